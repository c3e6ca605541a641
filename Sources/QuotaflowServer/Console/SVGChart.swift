/// Charts drawn on the server as SVG: no script, no style attribute (the policy forbids both),
/// colours from the stylesheet's classes, and every bar labelled with its value in words, so
/// nothing depends on colour alone.
enum SVGChart {
    struct CapBar {
        var label: String
        var depth: Int
        var spent: Int64
        var cap: Int64?
        var id: String
    }

    static let width = 760
    static let labelWidth = 220
    static let barWidth = 330

    /// Spend against cap, one row per project, children indented under their parents.
    static func capBars(_ bars: [CapBar]) -> String {
        guard !bars.isEmpty else { return "" }
        let row = 34
        let height = bars.count * row + 8
        // A capped project's bar is its cap; an uncapped one is measured against the largest uncapped spend.
        let scale = max(bars.filter { $0.cap == nil }.map(\.spent).max() ?? 1, 1)
        var out = open(height: height, label: "Spend this period against each project's cap")
        for (i, b) in bars.enumerated() {
            let y = 4 + i * row
            let x0 = labelWidth
            let spentWidth = width(b.spent, of: b.cap ?? scale)
            let over = b.cap.map { b.spent > $0 } ?? false
            let percent = b.cap.map { $0 > 0 ? " (\(b.spent * 100 / $0)%)" : "" } ?? ""
            let text =
                ConsoleText.display(b.spent) + (b.cap.map { " of " + ConsoleText.display($0) } ?? " (no cap)") + percent + (over ? " over cap" : "")
            out += "<g class=\"bar-row\" data-project=\"\(esc(b.id))\">"
            out += "<title>\(esc(b.label)): \(esc(text))</title>"
            out +=
                "<text class=\"label\" x=\"\(4 + b.depth * 14)\" y=\"\(y + 20)\">\(b.depth > 0 ? "└ " : "")\(esc(trim(b.label, 26 - 2 * b.depth)))</text>"
            out += "<rect class=\"track\" x=\"\(x0)\" y=\"\(y + 6)\" width=\"\(barWidth)\" height=\"18\" rx=\"3\"/>"
            out += "<rect class=\"\(over ? "fill over" : "fill")\" x=\"\(x0)\" y=\"\(y + 6)\" width=\"\(spentWidth)\" height=\"18\" rx=\"3\" "
            out += "data-spent=\"\(b.spent)\"/>"
            out += "<text class=\"value\" x=\"\(x0 + barWidth + 8)\" y=\"\(y + 20)\" data-value=\"spend\">\(esc(text))</text></g>"
        }
        return out + "</svg>"
    }

    /// One column per point (a day's spend), labelled under the axis and with its value above.
    static func columns(_ points: [(label: String, value: Int64)], title: String) -> String {
        guard !points.isEmpty else { return "" }
        let height = 200
        let top = max(points.map(\.value).max() ?? 1, 1)
        let slot = max(min((width - 40) / points.count, 60), 8)
        var out = open(height: height, label: title)
        for (i, p) in points.enumerated() {
            let h = Int((Double(p.value) / Double(top)) * 130)
            let x = 20 + i * slot
            out += "<g><title>\(esc(p.label)): \(esc(ConsoleText.display(p.value)))</title>"
            out += "<rect class=\"fill\" x=\"\(x)\" y=\"\(160 - h)\" width=\"\(max(slot - 4, 4))\" height=\"\(max(h, 1))\"/>"
            if points.count <= 16 {
                out += "<text class=\"small\" x=\"\(x)\" y=\"\(154 - h)\">\(esc(ConsoleText.display(p.value)))</text>"
            }
            if points.count <= 16 || i % max(points.count / 8, 1) == 0 {
                out += "<text class=\"small\" x=\"\(x)\" y=\"178\">\(esc(String(p.label.suffix(5))))</text>"
            }
            out += "</g>"
        }
        return out + "<line class=\"axis\" x1=\"16\" y1=\"160\" x2=\"\(width - 4)\" y2=\"160\"/></svg>"
    }

    /// Horizontal bars for a breakdown (spend by model, holder or project), largest first.
    static func breakdown(_ items: [(label: String, value: Int64)], title: String) -> String {
        let top = Array(items.sorted { $0.value > $1.value }.prefix(12))
        guard !top.isEmpty else { return "" }
        let row = 28
        let scale = max(top[0].value, 1)
        var out = open(height: top.count * row + 8, label: title)
        for (i, item) in top.enumerated() {
            let y = 4 + i * row
            out += "<g><title>\(esc(item.label)): \(esc(ConsoleText.display(item.value)))</title>"
            out += "<text class=\"label\" x=\"4\" y=\"\(y + 17)\">\(esc(trim(item.label, 28)))</text>"
            out += "<rect class=\"fill\" x=\"\(labelWidth)\" y=\"\(y + 4)\" width=\"\(width(item.value, of: scale))\" height=\"16\" rx=\"3\"/>"
            out += "<text class=\"value\" x=\"\(labelWidth + barWidth + 8)\" y=\"\(y + 17)\">\(esc(ConsoleText.display(item.value)))</text></g>"
        }
        return out + "</svg>"
    }

    static func open(height: Int, label: String) -> String {
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(esc(label))\">"
    }

    /// A bar's length; any spend at all shows (two units at least).
    static func width(_ value: Int64, of scale: Int64) -> Int {
        guard scale > 0, value > 0 else { return 0 }
        return max(Int(min(Double(value) / Double(scale), 1) * Double(barWidth)), 2)
    }

    static func trim(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(max(n - 1, 1))) + "…" : s }

    /// Text for SVG and HTML alike.
    static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
