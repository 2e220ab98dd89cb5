// Copies of the MTA's macro values (Sendmail "macros", Postfix "milter macros") at one stage.
// Values are copied out of libmilter's buffer at once; this type must never hold a pointer.

/// Macro values keyed by name as the MTA sends it: "i", "j", "{auth_authen}".
public struct Macros: Sendable, Equatable {
    public var all: [String: String]

    public init(_ values: [String: String]) {
        all = values
    }

    /// Returns the value of a macro, or nil when the MTA did not send it. A name may be given
    /// with or without its braces, as smfi_getsymval allows: `macros["auth_authen"]` finds
    /// "{auth_authen}" and `macros["{i}"]` finds "i".
    public subscript(_ name: String) -> String? {
        if let value = all[name] {
            return value
        }
        if name.hasPrefix("{"), name.hasSuffix("}"), name.count == 3 {
            return all[String(name.dropFirst().dropLast())]
        }
        if !name.hasPrefix("{") {
            return all["{\(name)}"]
        }
        return nil
    }
}

extension Macros {
    /// Macros read at every stage in addition to those requested in
    /// `MilterConfiguration.macros`. The MTA decides which of them it sends and when; a
    /// macro it did not send is absent from `Macros.all`.
    public static let standardNames: [String] = [
        "i", "j", "_", "v",
        "{daemon_name}", "{daemon_addr}", "{if_name}", "{if_addr}",
        "{client_addr}", "{client_port}", "{client_name}", "{client_ptr}", "{client_resolve}",
        "{auth_type}", "{auth_authen}", "{auth_author}", "{auth_ssf}",
        "{mail_addr}", "{mail_host}", "{mail_mailer}",
        "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}",
        "{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}",
        "{msg_id}",
    ]
}
