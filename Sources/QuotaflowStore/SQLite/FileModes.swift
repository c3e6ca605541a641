#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Database files hold the ledger and encrypted credentials: they are created readable and writable
/// by their owner only (0600). SQLite gives the `-wal` and `-shm` files the mode of the database.
public enum FileModes {
    /// Creates `path` with mode 0600 if it does not exist, and never touches an existing file.
    ///
    /// An existing database must not be opened and closed here: POSIX `close` releases every
    /// `fcntl` lock the process holds on the file, including those of SQLite connections already
    /// open on it. Another process (an operator's `sqlite3`, a backup) would then believe it is the
    /// only user, checkpoint and delete the `-wal` file under the running server, whose commits
    /// would from then on go to an unlinked file and be lost at the next restart. `O_EXCL` makes
    /// the create fail, without opening anything, when the file is already there.
    public static func createPrivate(_ path: String) {
        guard !path.hasPrefix("file:"), path != ":memory:", !path.isEmpty else { return }
        var st = stat()
        guard stat(path, &st) != 0 else { return }
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        if fd >= 0 { close(fd) }
    }

    /// Creates the database file 0600 and takes group and other access away from an existing one and
    /// its `-wal`/`-shm` files (databases created by earlier versions were 0644).
    public static func restrict(databasePath path: String) {
        guard !path.hasPrefix("file:"), path != ":memory:", !path.isEmpty else { return }
        createPrivate(path)
        for file in [path, path + "-wal", path + "-shm", path + "-journal"] {
            var st = stat()
            if stat(file, &st) == 0, st.st_mode & 0o077 != 0 { chmod(file, st.st_mode & 0o700) }
        }
    }
}
