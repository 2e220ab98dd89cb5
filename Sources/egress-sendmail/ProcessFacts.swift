// Lookups of the wrapper about itself and its caller: environment values, the identity
// settings of the config file, the submitting user, and the message on standard input.
//
// None of these may stop a submission: a missing account name, working directory or config
// file leaves the field empty or the default in place.

import EgressCore
import Glibc

/// Returns a non-empty environment variable, or nil.
func environmentValue(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}

/// Returns the identity section of the config file at `path`: the defaults when the file does
/// not exist, and the defaults with a warning when it cannot be read or is invalid.
func identitySettings(fromFile path: String) -> IdentitySettings {
    var status = stat()
    if stat(path, &status) != 0 && errno == ENOENT {
        return IdentitySettings()
    }
    do {
        return try Configuration.load(contentsOf: path).identity
    } catch {
        WrapperLog.warning("using the default identity settings: \(error)")
        return IdentitySettings()
    }
}

/// Returns the facts about the calling process for its stamp.
func currentSubmitter(envelopeSender: String) -> Submitter {
    let uid = getuid()
    return Submitter(
        uid: uid,
        account: accountName(of: uid) ?? "",
        workingDirectory: workingDirectory() ?? "",
        scriptFilename: environmentValue("SCRIPT_FILENAME"),
        envelopeSender: envelopeSender,
        hostname: hostname() ?? "")
}

private func accountName(of uid: uid_t) -> String? {
    var entry = passwd()
    var result: UnsafeMutablePointer<passwd>?
    var buffer = [CChar](repeating: 0, count: 16 * 1024)
    let error = getpwuid_r(uid, &entry, &buffer, buffer.count, &result)
    guard error == 0, result != nil, let name = entry.pw_name else { return nil }
    return String(cString: name)
}

private func workingDirectory() -> String? {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return nil }
    return String(cString: buffer)
}

private func hostname() -> String? {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
    return String(cString: buffer)
}

/// Reads standard input to its end; nil when a read fails (errno is set).
func readStandardInput() -> [UInt8]? {
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if count == 0 {
            return bytes
        }
        bytes.append(contentsOf: chunk[..<count])
    }
}
