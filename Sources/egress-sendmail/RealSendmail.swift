// Running the real sendmail: either in place of the wrapper (commands that submit nothing),
// or as a child that reads the stamped message from a pipe, whose exit status the wrapper
// then returns as its own.
//
// A failure here must never pass silently: when the real sendmail cannot be started or dies
// from a signal, the wrapper exits with EX_TEMPFAIL (75). That status means to the caller
// that the message was not accepted and may be retried.

import Glibc

enum RealSendmail {
    /// Exit status for "not submitted, try again later" (sysexits.h EX_TEMPFAIL).
    static let temporaryFailureStatus: Int32 = 75

    /// Replaces the wrapper with the real sendmail; returns only by exiting on failure.
    static func replaceProcess(path: String, arguments: [String]) -> Never {
        withArgumentVector(path: path, arguments: arguments) { argv in
            _ = execv(path, argv)
        }
        WrapperLog.error("cannot run \(path): \(String(cString: strerror(errno)))")
        exit(temporaryFailureStatus)
    }

    /// Runs the real sendmail with `message` on its standard input and returns the exit
    /// status the wrapper should exit with.
    static func run(path: String, arguments: [String], message: [UInt8]) -> Int32 {
        // pipe2 is a GNU extension that Swift's Glibc module does not import. Nothing else
        // runs in this process, so setting close-on-exec right after pipe() leaks nothing.
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else {
            WrapperLog.error("cannot create a pipe to \(path): \(String(cString: strerror(errno)))")
            return temporaryFailureStatus
        }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        guard let child = spawn(path: path, arguments: arguments, standardInput: readEnd) else {
            close(readEnd)
            close(writeEnd)
            return temporaryFailureStatus
        }
        close(readEnd)

        // The child may exit before reading everything (a usage error, for example). Its exit
        // status then explains more to the caller than the broken pipe does.
        writeAll(message, to: writeEnd)
        close(writeEnd)
        return exitStatus(of: child, path: path)
    }

    private static func spawn(path: String, arguments: [String], standardInput: Int32) -> pid_t? {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        // dup2 onto 0 clears close-on-exec there; the pipe's own descriptors close at exec.
        posix_spawn_file_actions_adddup2(&fileActions, standardInput, STDIN_FILENO)

        // The wrapper ignores SIGPIPE; the real sendmail starts with the default action.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        sigaddset(&defaultSignals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        var child: pid_t = 0
        let result = withArgumentVector(path: path, arguments: arguments) { argv in
            posix_spawn(&child, path, &fileActions, &attributes, argv, environ)
        }
        guard result == 0 else {
            WrapperLog.error("cannot run \(path): \(String(cString: strerror(result)))")
            return nil
        }
        return child
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno != EPIPE {
                    WrapperLog.error("cannot pass the message to the real sendmail: \(String(cString: strerror(errno)))")
                }
                return
            }
            offset += written
        }
    }

    /// Waits for the child and maps how it ended to the wrapper's exit status.
    private static func exitStatus(of child: pid_t, path: String) -> Int32 {
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            guard errno == EINTR else {
                WrapperLog.error("cannot wait for \(path): \(String(cString: strerror(errno)))")
                return temporaryFailureStatus
            }
        }
        // The wait status layout of Linux: the low 7 bits hold the signal, 0 for a normal exit.
        let signal = status & 0x7f
        if signal == 0 {
            return (status >> 8) & 0xff
        }
        WrapperLog.error("\(path) was killed by signal \(signal); the message may not have been submitted")
        return temporaryFailureStatus
    }

    /// Calls `body` with a NULL-terminated C argument vector: argv[0] is `path`, the rest
    /// are `arguments` unchanged. The strings live only for the call.
    private static func withArgumentVector<Result>(path: String, arguments: [String],
                                                   _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
        var vector: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) }
        vector.append(nil)
        defer { vector.forEach { free($0) } }
        return body(vector)
    }
}
