#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `quotaflow backup`: a consistent copy of the live database, written so that nothing is lost when
/// it goes wrong. The copy goes to a temporary file beside the target and is renamed into place only
/// when complete, so a failed backup leaves an older backup untouched; a target that is the database
/// itself or one of its `-wal`/`-shm`/`-journal` files, however the path is spelled, is refused.
public enum DatabaseBackup {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public static func run(database: String, to target: String, force: Bool) throws(Failure) {
        guard access(database, F_OK) == 0 else { throw Failure("no database at \(database)") }
        let source = canonical(database)
        let destination = canonical(target)
        let protected = [source, source + "-wal", source + "-shm", source + "-journal"]
        if protected.contains(destination) || protected.map(canonical).contains(destination) {
            throw Failure("refusing to write the backup onto the database or its -wal/-shm files (\(target)); choose another file")
        }
        var st = stat()
        if stat(destination, &st) == 0 {
            guard force else { throw Failure("\(target) exists; pass --force to overwrite it") }
            guard st.st_mode & S_IFMT == S_IFREG else { throw Failure("\(target) is not a regular file") }
        }
        let folder = directory(of: destination)
        let temporary = folder + "/.quotaflow-backup-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        do {
            let conn = try SQLiteConnection(path: source, readOnly: true)
            try conn.backup(to: temporary)
        } catch {
            unlink(temporary)
            throw Failure("backup failed: \(error)")
        }
        guard rename(temporary, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw Failure("cannot move the backup into place at \(target): \(reason)")
        }
    }

    /// The absolute path with symlinks, `.` and `..` resolved; for a file that does not exist yet,
    /// its resolved folder and its name.
    public static func canonical(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        let folder = directory(of: path)
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        if let resolved = realpath(folder, nil) {
            defer { free(resolved) }
            return String(cString: resolved) + "/" + name
        }
        return path
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let folder = String(path[..<slash])
        return folder.isEmpty ? "/" : folder
    }
}
