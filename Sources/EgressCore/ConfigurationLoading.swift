// Entry points that read a config file or text into a `Configuration`.
//
// Loading must never fall back to defaults on its own: a missing or unreadable file is an
// error here, and only the daemon decides that running without a file is acceptable.

#if canImport(Glibc)
import Glibc
#endif

extension Configuration {
    /// Largest config file read, in bytes; a bigger file is almost certainly the wrong file.
    public static let maximumFileBytes = 4 * 1024 * 1024

    /// Reads and decodes the YAML file at `path`. Throws `ConfigurationError`, also when the
    /// file is missing or unreadable (then with line 0).
    public static func load(contentsOf path: String) throws -> Configuration {
        let bytes = try readFile(path, kind: "config file", maximumBytes: maximumFileBytes)
        var configuration = try parse(bytes: bytes, file: path)
        try configuration.loadHostedDomainsFile()
        return configuration
    }

    /// Decodes YAML text; `file` names the source in errors. Empty text means all defaults.
    /// Throws `ConfigurationError`.
    public static func parse(_ text: String, file: String) throws -> Configuration {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Returns a message saying what is wrong with a listen spec (for example, one given on the
    /// command line), or nil when libmilter will accept it.
    public static func listenSpecError(_ spec: String) -> String? {
        do {
            try ConfigurationValues.checkListen(spec)
            return nil
        } catch let problem as ValueError {
            return problem.message
        } catch {
            return "\(error)"
        }
    }

    static func parse(bytes: [UInt8], file: String) throws -> Configuration {
        let root: YAMLNode?
        do {
            root = try YAMLTree.parse(bytes)
        } catch let syntax as YAMLSyntaxError {
            throw ConfigurationError(file: file, line: syntax.line, column: syntax.column, key: "", message: syntax.message)
        }
        return try ConfigurationDecoder(file: file).decode(root)
    }

    /// Reads a whole file with POSIX calls, so the error names the reason (errno) in plain words.
    /// `kind` names the file in messages ("config file").
    static func readFile(_ path: String, kind: String, maximumBytes: Int) throws -> [UInt8] {
        func failure(_ message: String) -> ConfigurationError {
            ConfigurationError(file: path, line: 0, column: 0, key: "", message: message)
        }
        func errnoText() -> String {
            String(cString: strerror(errno))
        }

        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw failure("cannot open the \(kind): \(errnoText())")
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw failure("cannot read the \(kind): \(errnoText())")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw failure("not a regular file")
        }
        guard status.st_size <= maximumBytes else {
            throw failure("the file is \(status.st_size) bytes long; a \(kind) may have at most \(maximumBytes)")
        }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read the \(kind): \(errnoText())")
            }
            if count == 0 {
                break
            }
            bytes.append(contentsOf: chunk[..<count])
            // The size may have grown since fstat.
            guard bytes.count <= maximumBytes else {
                throw failure("the file is longer than \(maximumBytes) bytes, the maximum for a \(kind)")
            }
        }
        return bytes
    }
}
