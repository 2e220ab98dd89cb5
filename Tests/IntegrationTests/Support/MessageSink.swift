// The far end of the throwaway Postfix: Postfix's smtp-sink listening on a loopback port and
// writing every message it receives to a file of its own, which the tests read back.
//
// smtp-sink names each file from a strftime template plus a pseudo-random hex suffix. The
// template includes the second, so two messages share a name only when they arrive in the same
// second and draw the same 32-bit suffix. A test that counts messages would then see one too few.
import Foundation
import Glibc

/// One message as smtp-sink stored it: its own X-* envelope headers, then the message.
struct SinkMessage {
    var fileName: String
    var bytes: [UInt8]
    /// When smtp-sink last wrote the file, which is when the message's DATA ended: the
    /// arrival time, with the file system's sub-second resolution.
    var arrival: Date?

    /// Header fields from the top of the file up to the first empty line, unfolded. The
    /// smtp-sink envelope fields (X-Mail-Args, X-Rcpt-Args) come first.
    var headers: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        let text = String(decoding: bytes[..<headerEnd], as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = line.hasSuffix("\r") ? line.dropLast() : line
            if line.isEmpty { break }
            if line.first == " " || line.first == "\t" {
                if !fields.isEmpty { fields[fields.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces) }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            fields.append((name, value))
        }
        return fields
    }

    /// Index just past the header section: the first empty line, or the end of the file. Only
    /// this part is decoded, because some corpus messages are megabytes long.
    private var headerEnd: Int {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 10 && (bytes[index + 1] == 10 || (bytes[index + 1] == 13 && index + 2 < bytes.count && bytes[index + 2] == 10)) {
                return index + 1
            }
            index += 1
        }
        return bytes.count
    }

    /// Values of every header field called `name`, compared case-insensitively.
    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    /// The envelope recipients, from smtp-sink's X-Rcpt-Args lines ("<addr> ORCPT=...").
    var recipients: [String] {
        headerValues("X-Rcpt-Args").compactMap(Self.angleAddress)
    }

    /// The envelope sender, from smtp-sink's X-Mail-Args line.
    var sender: String? {
        headerValues("X-Mail-Args").first.flatMap(Self.angleAddress)
    }

    private static func angleAddress(_ arguments: String) -> String? {
        guard let open = arguments.firstIndex(of: "<"), let close = arguments.firstIndex(of: ">"), open < close else {
            return nil
        }
        return String(arguments[arguments.index(after: open)..<close])
    }
}

final class MessageSink {
    let port: UInt16
    let directory: String
    private var process: Process?

    init(port: UInt16, directory: String) {
        self.port = port
        self.directory = directory
    }

    /// Starts smtp-sink as the postfix user, storing each message in `directory`, and waits
    /// until it accepts connections.
    func start(executable: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try CommandRunner.runChecked("/bin/chown", ["postfix", directory])

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "-u", "postfix",
            "-h", "sink.egress.test",
            "-d", directory + "/%Y%m%d%H%M%S.",
            "127.0.0.1:\(port)", "100",
        ]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process

        let listening = waitUntil(timeoutSeconds: 10) {
            (try? SMTPConnection(port: port)).map { $0.quit(); return true } ?? false
        }
        // A sink that exited could not bind the port, so whatever accepted the connection is another server.
        guard listening, process.isRunning else {
            throw CommandError(description: "smtp-sink did not start listening on 127.0.0.1:\(port)")
        }
    }

    /// Kills smtp-sink and waits for it. Safe to call when it never started.
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Reads every message received so far. A file smtp-sink is still writing may be incomplete.
    func messages() -> [SinkMessage] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { name in
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return SinkMessage(fileName: name, bytes: [UInt8](data), arrival: modificationDate(ofFile: path))
        }
    }

    /// Number of files the sink has created, complete or not. Cheaper than reading them.
    func fileCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).count
    }

    /// Received messages that were addressed to `recipient`.
    func messages(to recipient: String) -> [SinkMessage] {
        messages().filter { $0.recipients.contains(recipient) }
    }
}

/// Returns the modification time of the file at `path` with its nanoseconds, or nil when
/// stat fails.
func modificationDate(ofFile path: String) -> Date? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    let seconds = Double(status.st_mtim.tv_sec) + Double(status.st_mtim.tv_nsec) / 1_000_000_000
    return Date(timeIntervalSince1970: seconds)
}
