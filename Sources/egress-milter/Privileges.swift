// Start-up steps that need root: creating the state and socket directories, and then dropping to
// the unprivileged user for good. Each step fails closed: when any of them fails the daemon
// does not start, rather than run as root or with a socket the MTA cannot reach.
import Foundation
import Glibc

struct StartupError: Error, CustomStringConvertible {
    var description: String
}

struct Account {
    let name: String
    let uid: uid_t
    let gid: gid_t

    /// Looks a user up in the passwd database.
    static func named(_ name: String) throws -> Account {
        guard let entry = getpwnam(name) else {
            throw StartupError(description: """
                user '\(name)' does not exist; create it (useradd --system --no-create-home \
                --home-dir /nonexistent --shell /usr/sbin/nologin \(name)) or set 'user' in the configuration
                """)
        }
        return Account(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }
}

/// Looks a group up in the group database and returns its gid. An empty name gives the
/// primary group of `account`, the user the daemon runs as. `key` names the setting.
func groupID(named name: String, emptyMeans account: Account, key: String) throws -> gid_t {
    if name.isEmpty {
        return account.gid
    }
    guard let entry = getgrnam(name) else {
        throw StartupError(description: "group '\(name)' does not exist; create it or set '\(key)' in the configuration")
    }
    return entry.pointee.gr_gid
}

/// Creates a directory that does not exist yet, with its parents, and gives the new directory
/// its owner, group and mode. An existing directory is left as it is, because it may be shared
/// (such as /tmp or Postfix's private directory): the admin or the package owns its permissions.
/// Returns whether the directory was created.
@discardableResult
func prepareDirectory(_ path: String, owner: uid_t, group: gid_t, mode: mode_t) throws -> Bool {
    var existing = stat()
    if stat(path, &existing) == 0 {
        guard existing.st_mode & S_IFMT == S_IFDIR else {
            throw StartupError(description: "\(path) exists but is not a directory")
        }
        return false
    }
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        throw StartupError(description: "cannot create directory \(path): \(error.localizedDescription)")
    }
    guard chown(path, owner, group) == 0 else {
        throw StartupError(description: "cannot change owner of \(path): \(String(cString: strerror(errno)))")
    }
    guard chmod(path, mode) == 0 else {
        throw StartupError(description: "cannot change mode of \(path): \(String(cString: strerror(errno)))")
    }
    return true
}

/// Switches the process to the account for good: supplementary groups, group, then user.
/// Afterwards it checks that root cannot be regained.
func dropPrivileges(to account: Account) throws {
    guard initgroups(account.name, account.gid) == 0 else {
        throw StartupError(description: "initgroups(\(account.name)) failed: \(String(cString: strerror(errno)))")
    }
    guard setgid(account.gid) == 0 else {
        throw StartupError(description: "setgid(\(account.gid)) failed: \(String(cString: strerror(errno)))")
    }
    guard setuid(account.uid) == 0 else {
        throw StartupError(description: "setuid(\(account.uid)) failed: \(String(cString: strerror(errno)))")
    }
    if account.uid != 0 && setuid(0) == 0 {
        throw StartupError(description: "privileges were not dropped: setuid(0) still succeeds")
    }
}
