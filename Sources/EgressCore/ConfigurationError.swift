// The one error type of configuration loading: a problem at a place in a file.
//
// It must always name the file, and whenever the problem sits in the YAML text also the line,
// the column and the dotted key path, so an admin can go straight to the spot.

/// A configuration problem at a place in a file.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The path as the caller passed it to `load` or `parse`.
    public var file: String
    /// 1-based line; 0 when the problem concerns the whole file (for example, it cannot be read).
    public var line: Int
    /// 1-based column, counted in characters; 0 together with `line`.
    public var column: Int
    /// Dotted key path such as "senders[2].action"; empty when the problem is not under a key.
    public var key: String
    public var message: String

    public init(file: String, line: Int, column: Int, key: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// "FILE:LINE:COLUMN: KEY: MESSAGE", leaving out the parts that are unknown.
    public var description: String {
        var text = file
        if line > 0 {
            text += ":\(line):\(column)"
        }
        text += ": "
        if !key.isEmpty {
            text += "\(key): "
        }
        return text + message
    }
}
