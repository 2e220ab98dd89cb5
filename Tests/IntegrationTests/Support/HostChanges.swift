// Changes that some integration tests must make outside their temporary directory. A
// submission must come from a real uid, so they add local accounts and a group. A user other
// than root may run `sendmail -C DIR` only when the default Postfix main.cf authorizes DIR.
// The setgid wrapper reads its configuration only from its fixed path.
//
// These changes are shared by every process on the host, so a test holds `HostLock` from the
// first change until the last undo, and every change returns its undo, which the test runs in
// a teardown block whether it passed or not. Accounts carry `testAccountMarker` in their comment
// field and files start with `testFileMarker`, so a later run removes what a killed run left
// behind; it never removes or overwrites an account or a file without the marker.
import Foundation
import Glibc
import XCTest

/// Comment (GECOS) field of the accounts the tests create.
let testAccountMarker = "egress-milter integration test account"

/// First line of the host files the tests write.
let testFileMarker = "# Written by the egress-milter integration tests; removed when the test ends."

/// An exclusive lock, across processes, over the host-wide changes of the tests.
final class HostLock {
    static let path = "/tmp/egress-milter-integration-host.lock"
    private var descriptor: Int32

    /// Waits at most `timeoutSeconds` for the lock: another test run may hold it for the
    /// minutes its scenario takes.
    init(timeoutSeconds: Double) throws {
        descriptor = open(Self.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CommandError(description: "cannot open \(Self.path): \(String(cString: strerror(errno)))")
        }
        let locked = waitUntil(timeoutSeconds: timeoutSeconds, pollSeconds: 0.5) {
            flock(descriptor, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            close(descriptor)
            throw CommandError(description: "another test run held \(Self.path) for more than \(Int(timeoutSeconds)) s")
        }
    }

    /// Releases the lock. Safe to call twice.
    func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit {
        release()
    }
}

/// A local account as the passwd database lists it.
struct LocalAccount: Sendable {
    var name: String
    var uid: uid_t
    var gid: gid_t
    var home: String
}

/// Creates and removes local accounts and groups with useradd, userdel, groupadd and groupdel.
enum LocalAccounts {
    /// Creates a system group. A group of that name with members, or that is an account's
    /// primary group, was not made by these tests, so it is an error. An unused one is a
    /// leftover of a killed run and is replaced.
    static func createGroup(_ name: String) throws -> gid_t {
        if let existing = getgrnam(name) {
            let gid = existing.pointee.gr_gid
            let hasMembers = existing.pointee.gr_mem?.pointee != nil
            if hasMembers || isPrimaryGroup(gid) {
                throw CommandError(description: "group \(name) exists and is in use; the test needs that name for a group of its own")
            }
            try CommandRunner.runChecked("/usr/sbin/groupdel", [name])
        }
        try CommandRunner.runChecked("/usr/sbin/groupadd", ["--system", name])
        guard let group = getgrnam(name) else {
            throw CommandError(description: "groupadd \(name) succeeded but getgrnam does not find the group")
        }
        return group.pointee.gr_gid
    }

    /// Creates an account with its own primary group and `home` as its home directory, owned
    /// by it. An account of that name without `testAccountMarker` is an error; one with the
    /// marker is a leftover of a killed run and is replaced.
    static func createUser(_ name: String, home: String) throws -> LocalAccount {
        if let existing = getpwnam(name) {
            let comment = existing.pointee.pw_gecos.map { String(cString: $0) } ?? ""
            guard comment == testAccountMarker else {
                throw CommandError(description: "account \(name) exists and was not created by the tests (comment '\(comment)'); the test needs that name")
            }
            removeUser(name)
        }
        try CommandRunner.runChecked("/usr/sbin/useradd", [
            "--comment", testAccountMarker, "--home-dir", home, "--no-create-home",
            "--shell", "/usr/sbin/nologin", "--user-group", name,
        ])
        guard let entry = getpwnam(name) else {
            throw CommandError(description: "useradd \(name) succeeded but getpwnam does not find the account")
        }
        let account = LocalAccount(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, home: home)
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        guard chown(home, account.uid, account.gid) == 0 else {
            throw CommandError(description: "chown \(home): \(String(cString: strerror(errno)))")
        }
        return account
    }

    /// Removes the account and its primary group. Leaves its home directory, which lies in
    /// the test's temporary directory. Returns the error output when userdel failed.
    @discardableResult
    static func removeUser(_ name: String) -> String? {
        guard getpwnam(name) != nil else { return nil }
        let result = try? CommandRunner.run("/usr/sbin/userdel", [name])
        guard let result, result.succeeded else {
            return "userdel \(name) failed: \(result?.standardError ?? "did not run")"
        }
        return nil
    }

    /// Removes a group. Returns the error output when groupdel failed.
    @discardableResult
    static func removeGroup(_ name: String) -> String? {
        guard getgrnam(name) != nil else { return nil }
        let result = try? CommandRunner.run("/usr/sbin/groupdel", [name])
        guard let result, result.succeeded else {
            return "groupdel \(name) failed: \(result?.standardError ?? "did not run")"
        }
        return nil
    }

    private static func isPrimaryGroup(_ gid: gid_t) -> Bool {
        setpwent()
        defer { endpwent() }
        while let entry = getpwent() {
            if entry.pointee.pw_gid == gid {
                return true
            }
        }
        return false
    }
}

/// Host files the tests change, each with its undo.
enum HostFiles {
    /// The default Postfix configuration. When a user other than root gives sendmail a
    /// non-default configuration directory, the setgid postdrop requires it to be listed in
    /// this file's `alternate_config_directories` (postconf(5)); without the file, sendmail
    /// fails with "open file /etc/postfix/main.cf".
    static let postfixMainConfiguration = "/etc/postfix/main.cf"

    /// The configuration file that egress-sendmail reads when it runs setgid, because it then
    /// ignores EGRESS_MILTER_CONFIG.
    static let wrapperConfiguration = "/etc/egress-milter/egress-milter.yaml"

    /// Adds `directory` to `alternate_config_directories` in the default main.cf, creating
    /// the file when there is none (Debian's "No configuration" install has none). Returns
    /// the undo, which restores the previous value or removes the file it created.
    static func authorizePostfixConfigurationDirectory(_ directory: String) throws -> () -> Void {
        let path = postfixMainConfiguration
        let existing = try? String(contentsOfFile: path, encoding: .utf8)
        if existing == nil || existing!.hasPrefix(testFileMarker) {
            let text = "\(testFileMarker)\nalternate_config_directories = \(directory)\n"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o644)
            return { removeIfWrittenByTests(path) }
        }

        let postconf = findExecutable("postconf") ?? "/usr/sbin/postconf"
        let configurationDirectory = (path as NSString).deletingLastPathComponent
        let previous = try CommandRunner.runChecked(
            postconf, ["-c", configurationDirectory, "-h", "alternate_config_directories"]
        ).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let combined = previous.isEmpty ? directory : previous + ", " + directory
        try CommandRunner.runChecked(postconf, ["-c", configurationDirectory, "-e", "alternate_config_directories = \(combined)"])
        return {
            let restore = previous.isEmpty
                ? ["-c", configurationDirectory, "-X", "alternate_config_directories"]
                : ["-c", configurationDirectory, "-e", "alternate_config_directories = \(previous)"]
            _ = try? CommandRunner.run(postconf, restore)
        }
    }

    /// Writes the wrapper's configuration file, creating /etc/egress-milter when missing.
    /// Throws XCTSkip when a file that the tests did not write is there, because the test
    /// must not overwrite an admin's configuration. Returns the undo.
    static func installWrapperConfiguration(_ yaml: String) throws -> () -> Void {
        let path = wrapperConfiguration
        let directory = (path as NSString).deletingLastPathComponent
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), !existing.hasPrefix(testFileMarker) {
            throw XCTSkip("\(path) exists and was not written by the tests; the setgid wrapper reads only that file, so this test would have to overwrite it")
        }
        let createdDirectory = !FileManager.default.fileExists(atPath: directory)
        if createdDirectory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o755)
        }
        try (testFileMarker + "\n" + yaml).write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        return {
            removeIfWrittenByTests(path)
            if createdDirectory {
                rmdir(directory)
            }
        }
    }

    private static func removeIfWrittenByTests(_ path: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8), text.hasPrefix(testFileMarker) else { return }
        unlink(path)
    }
}
