// Account names of local submitters from the passwd database (NSS), for the policy core,
// which must not read system databases itself. Uses the reentrant getpw*_r calls, because
// sessions run on many libmilter threads at once.
import EgressCore
import Glibc

struct PasswdAccounts: AccountDirectory {
    /// Buffer size for one passwd entry; getpw*_r returns ERANGE when it is too small, and
    /// the lookup then retries with a larger one, up to `maximumBufferBytes`.
    private static let initialBufferBytes = 1024
    private static let maximumBufferBytes = 1 << 20

    private typealias PasswdCall = (
        UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
        UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>
    ) -> Int32

    func accountName(forUID uid: UInt32) -> String? {
        lookUp({ getpwuid_r(uid_t(uid), $0, $1, $2, $3) }, copy: { String(cString: $0.pw_name) })
    }

    func uid(forAccount name: String) -> UInt32? {
        lookUp({ getpwnam_r(name, $0, $1, $2, $3) }, copy: { UInt32($0.pw_uid) })
    }

    /// Runs one getpw*_r call and copies the field it needs while the entry's buffer lives.
    private func lookUp<Value>(_ call: PasswdCall, copy: (passwd) -> Value) -> Value? {
        var size = Self.initialBufferBytes
        while size <= Self.maximumBufferBytes {
            var buffer = [CChar](repeating: 0, count: size)
            let (status, value): (Int32, Value?) = buffer.withUnsafeMutableBufferPointer { storage in
                var entry = passwd()
                var result: UnsafeMutablePointer<passwd>?
                let status = call(&entry, storage.baseAddress!, storage.count, &result)
                guard status == 0, result != nil else { return (status, nil) }
                return (0, copy(entry))
            }
            guard status == ERANGE else { return value }
            size *= 2
        }
        return nil
    }
}
