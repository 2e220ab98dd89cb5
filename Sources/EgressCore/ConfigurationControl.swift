// The `control:` section of the config file: where the daemon's control socket lives and who
// may use it. egressctl reads the same section to find the socket.
//
// Whoever can connect to the control socket can suspend and release senders, so the socket
// must never be open to every local user: a mode with the o+w bit is refused, and the default
// group is root, which leaves the socket to root and the daemon's own user.

/// Settings of the control socket.
public struct ControlSettings: Sendable, Equatable {
    /// Absolute path of the unix socket; empty disables the control socket.
    public var socketPath = "/run/egress-milter/control.sock"
    /// Permission bits of the socket. Connecting needs write permission.
    public var socketMode: UInt32 = 0o660
    /// Group of the socket and of the directory the daemon creates for it; members may run
    /// egressctl without root. Root can always connect.
    public var socketGroup = "root"

    public init() {}
}

extension ConfigurationDecoder {
    func decodeControl(_ node: YAMLNode) throws -> ControlSettings {
        var settings = ControlSettings()
        let fields = try fields(of: node, at: "control", allowed: ConfigurationKeys.control)
        if let socket = fields["socket"] {
            let path = try string(socket, at: "control.socket")
            settings.socketPath = path.isEmpty ? "" : try absolutePath(socket, at: "control.socket")
            try value(of: socket, at: "control.socket") { _ in try ControlSettings.checkSocketPath(settings.socketPath) }
        }
        if let mode = fields["mode"] {
            let text = try string(mode, at: "control.mode")
            settings.socketMode = try value(of: mode, at: "control.mode") { _ in try ControlSettings.parseMode(text) }
        }
        if let group = fields["group"] {
            settings.socketGroup = try nonEmptyString(group, at: "control.group")
        }
        return settings
    }
}

extension ControlSettings {
    /// Longest unix socket path Linux accepts: `sun_path` has room for 108 bytes with the final NUL.
    static let maximumSocketPathBytes = 107

    static func checkSocketPath(_ path: String) throws {
        guard path.utf8.count <= maximumSocketPathBytes else {
            throw ValueError(message: "is \(path.utf8.count) bytes long; a unix socket path may have at most \(maximumSocketPathBytes)")
        }
    }

    /// Parses octal permission bits as `socket.mode` does, with the reason that matters here.
    static func parseMode(_ text: String) throws -> UInt32 {
        let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
        if let bits = UInt32(digits, radix: 8), bits <= 0o777, bits & 0o002 != 0 {
            throw ValueError(message: "mode '\(text)' lets every local user suspend and release senders; use \"0660\" with an admin group")
        }
        return try ConfigurationValues.parseSocketMode(text)
    }

    /// Reads `control.socket` from a config file without checking the rest of the file, so
    /// egressctl still reaches a daemon whose file has just been broken by an edit (for
    /// `egressctl reload` to report the error). Returns the default path when the file does
    /// not set the key, and nil with the reason when the YAML itself cannot be read.
    public static func socketPath(inConfigurationFile path: String) -> (path: String?, problem: String?) {
        let bytes: [UInt8]
        do {
            bytes = try Configuration.readFile(path, kind: "config file", maximumBytes: Configuration.maximumFileBytes)
        } catch {
            return (nil, "\(error)")
        }
        let root: YAMLNode?
        do {
            root = try YAMLTree.parse(bytes)
        } catch let syntax as YAMLSyntaxError {
            return (nil, "\(path):\(syntax.line):\(syntax.column): \(syntax.message)")
        } catch {
            return (nil, "\(path): \(error)")
        }
        guard let root, case .mapping(let pairs) = root.content,
              let control = pairs.first(where: { Self.isScalar($0.0, "control") })?.1,
              case .mapping(let controlPairs) = control.content,
              let socket = controlPairs.first(where: { Self.isScalar($0.0, "socket") })?.1,
              case .scalar(let text, _) = socket.content, !socket.isNull else {
            return (ControlSettings().socketPath, nil)
        }
        return (text, nil)
    }

    private static func isScalar(_ node: YAMLNode, _ text: String) -> Bool {
        if case .scalar(let value, _) = node.content {
            return value == text
        }
        return false
    }
}
