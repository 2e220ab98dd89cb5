// Column output for people: rows padded so every column starts at the same place, two spaces
// between columns, the last column unpadded so lines carry no trailing blanks. Widths count
// characters, which lines up for the ASCII that keys, queue IDs and addresses usually are.

import EgressCore
import Foundation

struct TextTable {
    var header: [String]?
    var rows: [[String]] = []
    /// Columns whose cells are aligned to the right, such as counts.
    var rightAligned: Set<Int> = []
    /// Text before every line, to set a table under a heading.
    var indent = ""

    init(header: [String]? = nil, rightAligned: Set<Int> = [], indent: String = "") {
        self.header = header
        self.rightAligned = rightAligned
        self.indent = indent
    }

    mutating func append(_ row: [String]) {
        rows.append(row)
    }

    /// Returns the table as lines ending in "\n", or "" when there are no rows.
    func render() -> String {
        guard !rows.isEmpty else { return "" }
        let all = (header.map { [$0] } ?? []) + rows
        let columns = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in all {
            for (index, cell) in row.enumerated() {
                widths[index] = max(widths[index], cell.count)
            }
        }

        var text = ""
        for row in all {
            var cells: [String] = []
            for (index, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if rightAligned.contains(index) {
                    cells.append(padding + cell)
                } else if index == row.count - 1 {
                    cells.append(cell)
                } else {
                    cells.append(cell + padding)
                }
            }
            var line = indent + cells.joined(separator: "  ")
            // An empty last cell leaves the padding of the one before it.
            while line.last == " " {
                line.removeLast()
            }
            text += line + "\n"
        }
        return text
    }
}

/// "2026-12-04 21:59:41Z": a UTC time to the second, short enough for a column.
func formatTime(_ date: Date) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
    return formatter.string(from: date)
}

/// "3d 4h", "2h 5m", "4m 10s" or "12s".
func formatDuration(seconds: Int) -> String {
    let days = seconds / 86_400
    let hours = seconds % 86_400 / 3600
    let minutes = seconds % 3600 / 60
    let rest = seconds % 60
    if days > 0 { return "\(days)d \(hours)h" }
    if hours > 0 { return "\(hours)h \(minutes)m" }
    if minutes > 0 { return "\(minutes)m \(rest)s" }
    return "\(rest)s"
}

extension WindowUsage {
    /// "29/30 per 1m": the count against the limit, with " hard" for a hard window.
    var countText: String {
        let length = window.split(separator: "/").last.map { String($0.split(separator: " ")[0]) } ?? "\(seconds)s"
        let text = "\(count)/\(limit) per \(length)"
        return hard ? text + " hard" : text
    }
}
