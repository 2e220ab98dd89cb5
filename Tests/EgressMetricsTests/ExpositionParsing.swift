// A small reader of the Prometheus text format for the tests: it splits the sample lines into
// name, labels and value, undoing the label escapes, so a test can look a sample up. It checks
// the line shape strictly and fails the test on anything it cannot read.
import XCTest

struct ExpositionSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

struct ParsedExposition {
    var samples: [ExpositionSample] = []
    /// Family name to its `# TYPE` value.
    var types: [String: String] = [:]
    /// Family name to its `# HELP` text, still escaped.
    var helps: [String: String] = [:]

    init(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(text.hasSuffix("\n"), "the exposition must end with a line feed", file: file, line: line)
        for row in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if row.hasPrefix("# HELP ") {
                let rest = row.dropFirst(7)
                let space = try XCTUnwrap(rest.firstIndex(of: " "), "HELP line without text: \(row)", file: file, line: line)
                helps[String(rest[..<space])] = String(rest[rest.index(after: space)...])
            } else if row.hasPrefix("# TYPE ") {
                let parts = row.dropFirst(7).split(separator: " ")
                XCTAssertEqual(parts.count, 2, "TYPE line: \(row)", file: file, line: line)
                types[String(parts[0])] = String(parts[1])
            } else {
                samples.append(try Self.parseSample(Substring(row), file: file, line: line))
            }
        }
    }

    /// Returns the value of the one sample with this name and exactly these labels.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    private static func parseSample(_ row: Substring, file: StaticString, line: UInt) throws -> ExpositionSample {
        var index = row.startIndex
        while index < row.endIndex, row[index] != "{", row[index] != " " {
            index = row.index(after: index)
        }
        let name = String(row[row.startIndex..<index])
        var labels: [String: String] = [:]
        if index < row.endIndex, row[index] == "{" {
            index = row.index(after: index)
            while row[index] != "}" {
                let equals = try XCTUnwrap(row[index...].firstIndex(of: "="), "label without '=': \(row)", file: file, line: line)
                let label = String(row[index..<equals])
                index = row.index(after: equals)
                XCTAssertEqual(row[index], "\"", "label value not quoted: \(row)", file: file, line: line)
                index = row.index(after: index)
                var value = ""
                while row[index] != "\"" {
                    if row[index] == "\\" {
                        index = row.index(after: index)
                        switch row[index] {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: XCTFail("invalid escape in \(row)", file: file, line: line)
                        }
                    } else {
                        value.append(row[index])
                    }
                    index = row.index(after: index)
                }
                labels[label] = value
                index = row.index(after: index)
                if row[index] == "," {
                    index = row.index(after: index)
                }
            }
            index = row.index(after: index)
        }
        XCTAssertEqual(row[index], " ", "no space before the value: \(row)", file: file, line: line)
        let text = row[row.index(after: index)...]
        let value = text == "+Inf" ? Double.infinity : try XCTUnwrap(Double(text), "invalid value in \(row)", file: file, line: line)
        return ExpositionSample(name: name, labels: labels, value: value)
    }
}
