// The submission wrapper egress-sendmail as a hosting server installs it: a copy owned by root
// and setgid to the group that may read the stamp key. Customer accounts run it the way PHP's
// mail() runs its sendmail_path (`egress-sendmail -t -i`), and it passes each message to the
// throwaway Postfix instance's sendmail.
//
// Every submission runs as the account's uid and gid with no supplementary groups (setpriv),
// in a clean environment, so the wrapper sees what it would see under a web server. Nothing
// here may run as root what the test means to run as a customer.
//
// A submission must not hang the test: coreutils' timeout runs it in a process group of its
// own and kills the whole group (the wrapper, sendmail and postdrop) at the time limit.
// Killing only the direct child would leave sendmail holding the output pipes open.
import Foundation
import Glibc

struct SubmissionWrapper: Sendable {
    /// The installed setgid copy.
    let path: String
    /// The Postfix instance's configuration directory, given to the real sendmail with -C.
    let postfixConfigDirectory: String
    /// The real sendmail command, which the wrapper runs after dropping its group.
    let realSendmail: String
    private let setpriv: String
    private let timeout: String

    /// Time limit of one submission, in seconds; the group gets SIGKILL 5 s later.
    static let submissionTimeoutSeconds = 50

    /// Locates the built wrapper: $EGRESS_SENDMAIL_BIN, else beside the daemon binary
    /// (SwiftPM builds both into one directory).
    static func locateExecutable() -> String? {
        if let path = ProcessInfo.processInfo.environment["EGRESS_SENDMAIL_BIN"], !path.isEmpty {
            return path
        }
        guard let daemon = MilterDaemon.locateExecutable() else { return nil }
        let path = (daemon as NSString).deletingLastPathComponent + "/egress-sendmail"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Copies `executable` into `directory` as root:`group` with mode 2755. Throws when the
    /// setgid bit does not hold, for example on a file system mounted nosuid, because the
    /// wrapper would then run without access to the key and every stamp would be missing.
    static func install(from executable: String, into directory: String, group: gid_t,
                        postfixConfigDirectory: String, realSendmail: String) throws -> SubmissionWrapper {
        guard let setpriv = findExecutable("setpriv"), let timeout = findExecutable("timeout") else {
            throw CommandError(description: "setpriv or timeout not found; they ship in Debian's util-linux and coreutils packages")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        let path = directory + "/egress-sendmail"
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(atPath: executable, toPath: path)
        // chown clears the set-group-ID bit, so the mode comes after it.
        guard chown(path, 0, group) == 0, chmod(path, 0o2755) == 0 else {
            throw CommandError(description: "cannot make \(path) setgid: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_ISGID != 0, status.st_gid == group else {
            throw CommandError(description: "\(path) did not keep its setgid bit and group \(group)")
        }
        if let mount = nosuidMount(containing: path) {
            throw CommandError(description: "\(path) lies on \(mount), mounted nosuid, where the setgid bit has no effect")
        }
        return SubmissionWrapper(
            path: path, postfixConfigDirectory: postfixConfigDirectory, realSendmail: realSendmail,
            setpriv: setpriv, timeout: timeout)
    }

    /// Submits `content` through the wrapper as `account`, as PHP's mail() does: the wrapper
    /// with `-t -i` (recipients from the header) and the envelope sender as `-f`. The script
    /// filename goes into SCRIPT_FILENAME, and the wrapper starts in `workingDirectory`.
    func submit(as account: LocalAccount, envelopeSender: String, content: [UInt8],
                scriptFilename: String?, workingDirectory: String) throws -> CommandResult {
        try run(as: account, program: path, envelopeSender: envelopeSender, content: content,
                scriptFilename: scriptFilename, workingDirectory: workingDirectory)
    }

    /// Submits `content` with the real sendmail as `account`, as a script that bypasses the
    /// wrapper would.
    func submitBypassingWrapper(as account: LocalAccount, envelopeSender: String, content: [UInt8],
                                workingDirectory: String) throws -> CommandResult {
        try run(as: account, program: realSendmail, envelopeSender: envelopeSender, content: content,
                scriptFilename: nil, workingDirectory: workingDirectory)
    }

    private func run(as account: LocalAccount, program: String, envelopeSender: String, content: [UInt8],
                     scriptFilename: String?, workingDirectory: String) throws -> CommandResult {
        var environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "EGRESS_REAL_SENDMAIL=\(realSendmail)"]
        if let scriptFilename {
            environment.append("SCRIPT_FILENAME=\(scriptFilename)")
        }
        let arguments = [
            "--kill-after=5", String(Self.submissionTimeoutSeconds),
            setpriv, "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--",
            "/usr/bin/env", "-i", "--chdir=\(workingDirectory)",
        ] + environment + [
            program, "-C", postfixConfigDirectory, "-f", envelopeSender, "-t", "-i",
        ]
        return try CommandRunner.run(
            timeout, arguments, input: content, timeoutSeconds: Double(Self.submissionTimeoutSeconds + 15))
    }

    /// Returns the mount point holding `path` when it is mounted nosuid, from /proc/self/mounts.
    private static func nosuidMount(containing path: String) -> String? {
        guard let table = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return nil }
        var best: (mountPoint: String, options: [Substring])?
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4 else { continue }
            let mountPoint = String(fields[1])
            let contains = mountPoint == "/" || path == mountPoint || path.hasPrefix(mountPoint + "/")
            if contains && mountPoint.count >= (best?.mountPoint.count ?? 0) {
                best = (mountPoint, fields[3].split(separator: ","))
            }
        }
        guard let best, best.options.contains("nosuid") else { return nil }
        return best.mountPoint
    }
}
