// Warnings and errors of the wrapper: to syslog (facility mail, ident egress-sendmail), where
// the admin looks for mail problems, and to standard error, which PHP passes to the web
// server's error log. Standard output is never used: some callers read it.
//
// A message must never contain the stamp key.

import Glibc

enum WrapperLog {
    private static let ident = "egress-sendmail"

    /// Opens syslog once at start-up.
    static func open() {
        // openlog keeps the pointer, so the identity must outlive the process: a static C string.
        openlog(identPointer, LOG_PID, LOG_MAIL)
    }

    nonisolated(unsafe) private static let identPointer: UnsafeMutablePointer<CChar> = strdup(ident)

    static func warning(_ message: String) {
        write(LOG_WARNING, "warning: " + message)
    }

    static func error(_ message: String) {
        write(LOG_ERR, "error: " + message)
    }

    private static func write(_ priority: Int32, _ message: String) {
        // syslog is variadic, which Swift cannot call; vsyslog takes the arguments as a va_list.
        message.withCString { text in
            withVaList([text]) { arguments in
                vsyslog(priority, "%s", arguments)
            }
        }
        let line = "\(ident): \(message)\n"
        _ = line.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }
}
