// Writes metric families in the Prometheus text exposition format, version 0.0.4: a `# HELP`
// and a `# TYPE` line per family, then one `name{label="value"} number` line per sample.
//
// Label values and help texts are escaped as that format requires (backslash, double quote
// in label values, line feed), so no configured symbol or rule name can break a line. Names
// of metrics and labels are the caller's constants and are not checked here.

import Foundation

/// Builds one exposition text; not thread-safe, because each scrape makes its own.
public struct ExpositionWriter {
    public enum MetricType: String {
        case counter, gauge, histogram
    }

    public private(set) var text = ""

    public init() {}

    /// Appends the `# HELP` and `# TYPE` lines that start a family.
    public mutating func family(_ name: String, type: MetricType, help: String) {
        text += "# HELP \(name) \(Self.escapeHelp(help))\n"
        text += "# TYPE \(name) \(type.rawValue)\n"
    }

    public mutating func sample(_ name: String, labels: [(String, String)] = [], value: UInt64) {
        appendSample(name, labels: labels, formattedValue: String(value))
    }

    public mutating func sample(_ name: String, labels: [(String, String)] = [], value: Double) {
        appendSample(name, labels: labels, formattedValue: Self.format(value))
    }

    private mutating func appendSample(_ name: String, labels: [(String, String)], formattedValue: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (index, (label, value)) in labels.enumerated() {
                if index > 0 {
                    text += ","
                }
                text += "\(label)=\"\(Self.escapeLabelValue(value))\""
            }
            text += "}"
        }
        text += " \(formattedValue)\n"
    }

    /// Escapes a label value: `\` as `\\`, `"` as `\"` and a line feed as `\n`.
    /// Works on Unicode scalars, because Swift reads "\r\n" as one Character.
    public static func escapeLabelValue(_ value: String) -> String {
        let scalars = value.unicodeScalars
        guard scalars.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var escaped = String.UnicodeScalarView()
        for scalar in scalars {
            switch scalar {
            case "\\": escaped.append(contentsOf: "\\\\".unicodeScalars)
            case "\"": escaped.append(contentsOf: "\\\"".unicodeScalars)
            case "\n": escaped.append(contentsOf: "\\n".unicodeScalars)
            default: escaped.append(scalar)
            }
        }
        return String(escaped)
    }

    /// Escapes a help text: `\` as `\\` and a line feed as `\n`; quotes stay as they are.
    public static func escapeHelp(_ help: String) -> String {
        help.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Formats a number as Go's strconv.ParseFloat reads it: whole numbers without a
    /// fraction ("1", "30"), others in Swift's shortest exact form ("0.0005", "1e-07"), and
    /// "+Inf", "-Inf" and "NaN" as the format spells them.
    public static func format(_ value: Double) -> String {
        if value.isNaN {
            return "NaN"
        }
        if value.isInfinite {
            return value > 0 ? "+Inf" : "-Inf"
        }
        if value == value.rounded(), abs(value) < 1e15 {
            return String(Int64(value))
        }
        return value.description
    }
}
