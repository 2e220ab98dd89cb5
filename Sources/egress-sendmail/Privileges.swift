// The wrapper's extra privilege and its permanent removal. Installed setgid to the group that
// owns the stamp key, the wrapper starts with that group as its effective and saved group.
// After reading the key it sets real, effective and saved ids to the caller's real ones, so
// neither the rest of the wrapper nor the real sendmail it runs can get the group back.
//
// Dropping must fail closed: if the ids are not the caller's afterwards, the caller stops
// before it runs any other program.

import Glibc

enum Privileges {
    /// Whether the process runs with ids other than its caller's (setgid or setuid bit).
    static var areElevated: Bool {
        getegid() != getgid() || geteuid() != getuid()
    }

    /// Sets every group id and user id to the real ones. Returns an error message, or nil
    /// when the process now has exactly its caller's ids.
    static func dropPermanently() -> String? {
        let realGroup = getgid(), privilegedGroup = getegid()
        let realUser = getuid(), privilegedUser = geteuid()

        // setresgid is a GNU extension that Swift's Glibc module does not import. Linux's
        // setregid sets the saved id to the new effective one whenever the real id is given,
        // so this drops all three. The group goes first, because once the user id is
        // dropped, changing the group may be refused.
        guard setregid(realGroup, realGroup) == 0 else {
            return "cannot drop the group privilege: \(String(cString: strerror(errno)))"
        }
        guard setreuid(realUser, realUser) == 0 else {
            return "cannot drop the user privilege: \(String(cString: strerror(errno)))"
        }

        // Check the result: the ids are the caller's, and the old ones cannot be regained.
        guard getegid() == realGroup, getgid() == realGroup, geteuid() == realUser, getuid() == realUser else {
            return "the group or user ids did not change to the caller's"
        }
        if privilegedGroup != realGroup && realUser != 0 && setegid(privilegedGroup) == 0 {
            return "the group privilege could be regained after dropping it"
        }
        if privilegedUser != realUser && setuid(privilegedUser) == 0 {
            return "the user privilege could be regained after dropping it"
        }
        return nil
    }
}
