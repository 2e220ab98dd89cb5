// A private Dovecot that serves only SASL authentication to Postfix: its own configuration,
// run and state directories and log inside the test's temporary directory, no mail protocols,
// and the auth service on a free 127.0.0.1 port, which Postfix's smtpd queries
// (`smtpd_sasl_type = dovecot`, `smtpd_sasl_path = inet:127.0.0.1:PORT`). Logins and
// plaintext passwords come from a passwd-file.
//
// It must never read /etc/dovecot or listen beyond loopback: the configuration is complete in
// itself and includes nothing. Dovecot runs in the foreground as a child of the test, so stop()
// ends exactly that process.
import Foundation
import Glibc

final class DovecotAuthService {
    let directory: String
    let port: UInt16
    let logins: [(login: String, password: String)]
    private let executable: String
    private var process: Process?

    var configurationPath: String { directory + "/dovecot.conf" }
    var logPath: String { directory + "/dovecot.log" }
    /// The value of Postfix's smtpd_sasl_path.
    var saslPath: String { "inet:127.0.0.1:\(port)" }

    /// Returns nil when Dovecot is not installed (Debian package dovecot-core).
    static func locateExecutable() -> String? {
        findExecutable("dovecot")
    }

    init(executable: String, directory: String, logins: [(login: String, password: String)]) throws {
        self.executable = executable
        self.directory = directory
        self.logins = logins
        port = try freeLoopbackPort()
    }

    /// Writes the configuration and the passwd-file, starts `dovecot -F` and waits until the
    /// auth port accepts connections. Throws with the log when it exits or never listens.
    func start() throws {
        for subdirectory in ["", "/run", "/state"] {
            try FileManager.default.createDirectory(atPath: directory + subdirectory, withIntermediateDirectories: true)
        }
        chmod(directory, 0o755)
        try configuration().write(toFile: configurationPath, atomically: true, encoding: .utf8)
        let passwords = logins.map { "\($0.login):{PLAIN}\($0.password)\n" }.joined()
        let passwordPath = directory + "/passwd"
        try passwords.write(toFile: passwordPath, atomically: true, encoding: .utf8)
        // The auth process runs as Dovecot's internal user, which must read the passwd-file.
        if let group = getgrnam("dovecot") {
            chown(passwordPath, 0, group.pointee.gr_gid)
        }
        chmod(passwordPath, 0o640)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-F", "-c", configurationPath]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process

        let listening = waitUntil(timeoutSeconds: 20) {
            !process.isRunning || canConnect(toLoopbackPort: port)
        }
        guard listening, process.isRunning else {
            let state = process.isRunning ? "did not listen on 127.0.0.1:\(port) within 20 s" : "exited with status \(process.terminationStatus)"
            throw CommandError(description: "dovecot \(state); its log:\n\(log())")
        }
    }

    /// Stops Dovecot and its service processes with SIGTERM, then SIGKILL after 10 s. Safe to
    /// call when it never started.
    ///
    /// The signal goes to the whole process group, which Foundation's Process creates for the
    /// master. Signalled alone, the master exits at once but leaves its auth and log processes
    /// running for about 30 s, and Process counts the master as running until they are gone.
    func stop() {
        guard let process, process.isRunning else { return }
        let group = process.processIdentifier
        kill(-group, SIGTERM)
        if !waitUntil(timeoutSeconds: 10, { !process.isRunning }) {
            kill(-group, SIGKILL)
            _ = waitUntil(timeoutSeconds: 10) { !process.isRunning }
        }
    }

    func log() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// Returns dovecot.conf: no protocols, so the master starts only the auth service and the
    /// services it needs, and plaintext mechanisms allowed without TLS, which is safe only
    /// because nothing leaves loopback.
    private func configuration() -> String {
        """
        # Private Dovecot of one integration test: SASL authentication for Postfix only.
        base_dir = \(directory)/run
        state_dir = \(directory)/state
        log_path = \(logPath)
        protocols =
        listen = 127.0.0.1
        ssl = no
        auth_mechanisms = plain login
        disable_plaintext_auth = no
        passdb {
          driver = passwd-file
          args = scheme=PLAIN username_format=%u \(directory)/passwd
        }
        userdb {
          driver = static
          args = uid=nobody gid=nogroup home=/nonexistent
        }
        service auth {
          inet_listener {
            address = 127.0.0.1
            port = \(port)
          }
        }

        """
    }
}

/// True when a TCP connect() to 127.0.0.1:`port` succeeds.
func canConnect(toLoopbackPort port: UInt16) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = loopbackAddress(port: port)
    let result = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result == 0
}
