// Reads whole files for the offline commands with POSIX calls, so a failure carries the C
// library's text for errno ("No such file or directory", "Is a directory", "Permission
// denied") instead of Foundation's localized text, which names no reason for a directory.
//
// It must never print or exit: it returns the bytes or throws `FileReadError`, and the command
// decides whether the error ends the run. There is no size limit, because the scanner reads
// only the first `scoring.scan_limit` bytes of a body anyway and an admin runs this on
// messages of their own choosing.

import Glibc

/// A file that could not be opened or read, with errno's text.
struct FileReadError: Error, CustomStringConvertible {
    var path: String
    var code: Int32

    /// "PATH: No such file or directory".
    var description: String {
        "\(path): \(String(cString: strerror(code)))"
    }
}

/// Returns every byte of the file at `path`. A directory fails with EISDIR when it is read;
/// a pipe or FIFO is read to its end.
func readWholeFile(_ path: String) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        throw FileReadError(path: path, code: errno)
    }
    defer { close(descriptor) }

    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw FileReadError(path: path, code: errno)
        }
        if count == 0 {
            return bytes
        }
        bytes.append(contentsOf: chunk[..<count])
    }
}
