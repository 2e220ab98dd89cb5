// egressctl's end of the control socket: finding the socket's path, connecting, sending one
// request line and reading one reply line.
//
// The path comes from --socket, else from `control.socket` in the configuration file, which
// is read leniently (only that key), so a daemon whose file an admin just broke can still be
// reached to report the error on reload. Every failed connect names the path and what to
// check, because "connection refused" alone leaves an admin guessing.

import EgressCore
import Foundation
import Glibc

struct ControlClient {
    /// Maximum wait for the daemon's reply, in seconds.
    static let replyTimeoutSeconds = 60

    let socketPath: String
    /// The origin of the path, for error messages: "--socket", the file, or the default.
    let pathSource: String

    init(socketPath: String, pathSource: String) {
        self.socketPath = socketPath
        self.pathSource = pathSource
    }

    /// Resolves the socket path from --socket and --config.
    init(arguments: CommandArguments) throws {
        if let socket = arguments.values["--socket"] {
            guard !socket.isEmpty else {
                throw CommandFailure.usage("egressctl: --socket needs a path")
            }
            self.init(socketPath: socket, pathSource: "--socket")
            return
        }
        let configurationPath = arguments.values["--config"] ?? defaultConfigurationPath
        let configurationGiven = arguments.values["--config"] != nil
        guard configurationGiven || FileManager.default.fileExists(atPath: configurationPath) else {
            self.init(socketPath: ControlSettings().socketPath, pathSource: "the built-in default, as \(configurationPath) does not exist")
            return
        }
        let found = ControlSettings.socketPath(inConfigurationFile: configurationPath)
        guard let path = found.path else {
            throw CommandFailure.usage("egressctl: cannot read control.socket from \(configurationPath): \(found.problem ?? "unknown error"); pass --socket PATH")
        }
        guard !path.isEmpty else {
            throw CommandFailure.usage("egressctl: the control socket is disabled in \(configurationPath) (control.socket is empty); set it and restart the daemon")
        }
        self.init(socketPath: path, pathSource: "control.socket in \(configurationPath)")
    }

    /// Sends a request and returns the daemon's result. Throws `CommandFailure.connection`
    /// when the daemon cannot be reached or its reply is unreadable, and `DaemonError` when
    /// it replies with an error.
    func send<Result: Codable & Sendable>(_ request: ControlRequest, expecting: Result.Type) throws -> Result {
        let line = try exchange(ControlProtocol.encodeLine(request))
        let reply: ControlReply<Result>
        do {
            reply = try ControlProtocol.decodeLine(ControlReply<Result>.self, from: line)
        } catch {
            // An error reply has no result of the expected type; read the envelope alone.
            if let envelope = try? ControlProtocol.decodeLine(ControlReply<EmptyResult>.self, from: line), !envelope.ok {
                throw DaemonError(description: envelope.error ?? "the daemon reported an error without a message")
            }
            throw CommandFailure.connection("egressctl: unreadable reply from the daemon on \(socketPath): \(error); are egressctl and egress-milter of the same release?")
        }
        guard reply.ok, let result = reply.result else {
            throw DaemonError(description: reply.error ?? "the daemon reported an error without a message")
        }
        return result
    }

    /// Connects, writes the request line and reads one reply line.
    private func exchange(_ request: [UInt8]) throws -> [UInt8] {
        let descriptor = try connect()
        defer { close(descriptor) }

        var offset = 0
        while offset < request.count {
            let written = request[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw CommandFailure.connection("egressctl: writing to \(socketPath) failed: \(String(cString: strerror(errno)))")
            }
            offset += written
        }

        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    throw CommandFailure.connection("egressctl: no reply from the daemon on \(socketPath) within \(Self.replyTimeoutSeconds) s")
                }
                throw CommandFailure.connection("egressctl: reading from \(socketPath) failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 {
                throw CommandFailure.connection("egressctl: the daemon closed \(socketPath) without a reply; see its log")
            }
            reply.append(contentsOf: chunk[..<count])
            if reply.last == UInt8(ascii: "\n") {
                return reply
            }
            guard reply.count <= ControlProtocol.maximumReplyBytes else {
                throw CommandFailure.connection("egressctl: the daemon's reply is longer than \(ControlProtocol.maximumReplyBytes) bytes")
            }
        }
    }

    private func connect() throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(socketPath.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw CommandFailure.usage("egressctl: socket path \(socketPath) is too long for a unix socket")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else {
            throw CommandFailure.connection("egressctl: socket() failed: \(String(cString: strerror(errno)))")
        }
        let status = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard status == 0 else {
            let code = errno
            close(descriptor)
            throw CommandFailure.connection(connectionProblem(code))
        }
        var timeout = timeval(tv_sec: Self.replyTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return descriptor
    }

    /// Returns the message for a failed connect: what failed, on which path, and what to check.
    func connectionProblem(_ code: Int32) -> String {
        let prefix = "egressctl: cannot connect to the daemon's control socket \(socketPath) (from \(pathSource)): \(String(cString: strerror(code)))"
        switch code {
        case ENOENT, ECONNREFUSED:
            return prefix + "; is egress-milter running (systemctl status egress-milter, or its log)? Pass --socket PATH if it listens elsewhere."
        case EACCES, EPERM:
            return prefix + "; run egressctl as root or as a member of the socket's group (control.group in the configuration)."
        default:
            return prefix
        }
    }
}
