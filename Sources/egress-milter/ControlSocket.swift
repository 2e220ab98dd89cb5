// The unix socket under the control protocol: creating it with its directory, owner and
// mode, accepting connections with the peer's credentials, and reading and writing lines.
//
// When the socket is created: while the daemon is still root, before it drops privileges.
// The socket's group (root by default, or an admin group) is usually one the daemon's user
// does not belong to, and only root can give a file to such a group. The directory
// (default /run/egress-milter, which only root can create under /run) is created then too,
// owned by the daemon's user with the socket's group and mode 0750. The daemon's user owns
// both the directory and the socket, so the daemon removes the socket at exit without root.
// An existing directory is left as it is, because the admin or systemd (RuntimeDirectory=)
// may have made it.
//
// A socket file left by a crashed daemon is removed at start; a socket that still answers
// belongs to a running daemon, and the start fails instead of taking it over.
//
// Every C call is checked and turned into a `ControlSocketError` carrying errno's text. Reads
// and writes have time limits, so a client that stops half-way cannot hold a thread forever.

import Foundation
import Glibc

struct ControlSocketError: Error, CustomStringConvertible {
    var description: String

    /// "OPERATION PATH: strerror(errno)", for a failed C call.
    static func system(_ operation: String, _ path: String) -> ControlSocketError {
        ControlSocketError(description: "\(operation) \(path): \(String(cString: strerror(errno)))")
    }
}

/// The credentials of the process at the other end of a unix socket (SO_PEERCRED).
struct ControlPeer: Sendable, Equatable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// "uid 0 (root)", for log lines.
    var description: String {
        guard let entry = getpwuid(uid_t(uid)) else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: entry.pointee.pw_name)))"
    }
}

/// A listening control socket.
final class ControlListener: @unchecked Sendable {
    // @unchecked: the descriptor and path never change after init, and `close()` runs once,
    // at shutdown, after the accept thread has stopped.
    let path: String
    let descriptor: Int32

    /// Requests waiting in the kernel before accept.
    static let backlog: Int32 = 16

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// Creates the directory when missing, removes a stale socket file, binds and listens.
    /// With `owner` (the daemon runs as root) the directory and socket go to the owner's uid
    /// and `group`. Without it they keep the current user and group.
    static func open(path: String, mode: UInt32, group: gid_t?, owner: Account?) throws -> ControlListener {
        let directory = (path as NSString).deletingLastPathComponent
        if let owner {
            try prepareDirectory(directory, owner: owner.uid, group: group ?? owner.gid, mode: 0o750)
        } else if !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ControlSocketError(description: "cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        try removeStaleSocket(path)

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ControlSocketError.system("socket() for", path)
        }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        do {
            try withSocketAddress(path) { address, length in
                guard bind(descriptor, address, length) == 0 else {
                    throw ControlSocketError.system("cannot bind", path)
                }
            }
            guard chmod(path, mode_t(mode)) == 0 else {
                throw ControlSocketError.system("cannot change the mode of", path)
            }
            if let owner {
                guard chown(path, owner.uid, group ?? owner.gid) == 0 else {
                    throw ControlSocketError.system("cannot change the owner of", path)
                }
            }
            guard listen(descriptor, backlog) == 0 else {
                throw ControlSocketError.system("cannot listen on", path)
            }
        } catch {
            Glibc.close(descriptor)
            unlink(path)
            throw error
        }
        return ControlListener(path: path, descriptor: descriptor)
    }

    /// Removes a socket file without a listener. Throws for a live socket or another kind of file.
    private static func removeStaleSocket(_ path: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw ControlSocketError(description: "\(path) exists and is not a socket; remove it or set control.socket")
        }
        if let probe = try? ControlConnection.connect(to: path) {
            probe.close()
            throw ControlSocketError(description: "another process listens on \(path); is egress-milter already running?")
        }
        guard unlink(path) == 0 else {
            throw ControlSocketError.system("cannot remove the stale socket", path)
        }
    }

    /// Waits up to `timeoutMilliseconds` for a connection; nil when none came. Throws when
    /// the listener failed or was shut down.
    func accept(timeoutMilliseconds: Int32) throws -> ControlConnection? {
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&request, 1, timeoutMilliseconds)
        if ready < 0 {
            if errno == EINTR { return nil }
            throw ControlSocketError.system("poll on", path)
        }
        guard ready > 0 else { return nil }

        let connection = Glibc.accept(descriptor, nil, nil)
        guard connection >= 0 else {
            // The client may have gone between poll and accept.
            if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { return nil }
            throw ControlSocketError.system("accept on", path)
        }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        return ControlConnection(descriptor: connection)
    }

    /// Closes the socket and removes its file.
    func close() {
        Glibc.close(descriptor)
        unlink(path)
    }
}

/// One connection, on either side. Not thread-safe: one thread owns it at a time. The
/// accept thread hands it over to the thread that serves it and never touches it again,
/// which is what `@unchecked Sendable` relies on.
final class ControlConnection: @unchecked Sendable {
    let descriptor: Int32
    /// Bytes received after the last line returned.
    private var pending: [UInt8] = []

    /// Maximum wait for the peer in one read or write, in seconds.
    static let ioTimeoutSeconds = 30

    init(descriptor: Int32) {
        self.descriptor = descriptor
        var timeout = timeval(tv_sec: Self.ioTimeoutSeconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
    }

    /// Connects to the socket at `path`.
    static func connect(to path: String) throws -> ControlConnection {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw ControlSocketError.system("socket() for", path)
        }
        do {
            try withSocketAddress(path) { address, length in
                guard Glibc.connect(descriptor, address, length) == 0 else {
                    throw ControlSocketError.system("cannot connect to", path)
                }
            }
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        return ControlConnection(descriptor: descriptor)
    }

    /// Returns the credentials of the connected process, or nil when getsockopt fails.
    func peer() -> ControlPeer? {
        // struct ucred is pid_t, uid_t, gid_t: three 32-bit fields. Glibc hides the struct
        // without _GNU_SOURCE, so a tuple of the same layout takes its place.
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return ControlPeer(pid: credentials.0, uid: credentials.1, gid: credentials.2)
    }

    /// Reads up to and including the next "\n". Returns nil at end of stream before any byte
    /// of a new line. Throws when the line grows past `maximumBytes`, the peer stops
    /// mid-line or the read times out.
    func readLine(maximumBytes: Int) throws -> [UInt8]? {
        var searchFrom = 0
        while true {
            if let newline = pending[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(pending[...newline])
                pending.removeFirst(newline + 1)
                return line
            }
            guard pending.count < maximumBytes else {
                throw ControlSocketError(description: "line longer than \(maximumBytes) bytes")
            }
            searchFrom = pending.count
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw ControlSocketError(description: "no data for \(Self.ioTimeoutSeconds) s")
                }
                throw ControlSocketError(description: "read failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                guard pending.isEmpty else {
                    throw ControlSocketError(description: "the connection closed in the middle of a line")
                }
                return nil
            }
            pending.append(contentsOf: chunk[..<count])
        }
    }

    /// Writes all of `bytes`. MSG_NOSIGNAL turns a closed peer into EPIPE instead of SIGPIPE.
    func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw ControlSocketError(description: "write failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    func close() {
        Glibc.close(descriptor)
    }
}

/// Calls `body` with a sockaddr_un for `path`. Throws when the path does not fit.
private func withSocketAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void) throws {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
        throw ControlSocketError(description: "socket path \(path) is \(bytes.count) bytes long; the maximum is \(capacity - 1)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    try withUnsafePointer(to: &address) { pointer in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            try body(socketAddress, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
}
