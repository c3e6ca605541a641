import Foundation
import Glibc

/// Runs a program to completion and returns its exit status and combined stdout and stderr.
///
/// Foundation's `Process.run()` on Linux emulates close-on-exec by listing every open descriptor
/// while it builds the spawn actions, and it crashed (a bad pointer in `memcpy`) when the parallel
/// server tests opened and closed sockets at the same moment. This calls `posix_spawn` directly:
/// the output pipe is created close-on-exec and `dup2`ed onto 1 and 2, and every other descriptor
/// the child would inherit is closed with glibc's `closefrom` spawn action where it exists.
enum ChildProcess {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `directory`: the working directory (through coreutils' `env -C`).
    static func run(_ command: [String], environment: [String: String], directory: String? = nil) async throws -> (status: Int32, output: String) {
        let arguments = directory.map { ["/usr/bin/env", "-C", $0] + command } ?? command
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let (readEnd, writeEnd) = (fds[0], fds[1])

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        addCloseFrom(&actions, 3)

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid = pid_t()
        let rc = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        close(writeEnd)
        guard rc == 0 else {
            close(readEnd)
            throw Failure(description: "posix_spawnp \(arguments[0]): error \(rc)")
        }
        // The reads and the wait block, so they run on a thread of their own: on the concurrency pool
        // (two threads on a 2-core machine) two children at once would starve the server under test,
        // which the children are waiting for.
        let child = pid
        return await withCheckedContinuation { (done: CheckedContinuation<(status: Int32, output: String), Never>) in
            let thread = Thread {
                var output: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        output.append(contentsOf: buffer[0..<n])
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                close(readEnd)
                var status: Int32 = 0
                while waitpid(child, &status, 0) == -1 && errno == EINTR {}
                let exited = (status & 0x7f) == 0
                done.resume(returning: (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), String(decoding: output, as: UTF8.self)))
            }
            thread.start()
        }
    }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34 and later), looked up at run time
    /// because the Glibc module does not export it.
    private static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ low: Int32) {
        typealias Fn = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: Fn.self)(actions, low)
    }
}
