// Builds the facts of a message read from a file (RFC 5322 form), for the tools that score
// messages without an MTA: `egressctl score` and the scoring benchmark. The envelope that a
// file lacks is taken from its headers unless the caller gives it.
//
// It must decode the message exactly as the milter would: headers as the MTA passes them,
// then the body through `MessageScanner` with the configured limits.

extension MessageFacts {
    /// The facts of a complete message. `sender` defaults to the Return-Path, else the From
    /// address; `recipients` default to the addresses in To, Cc and Bcc.
    public init(message: [UInt8], path: SubmissionPath = .smtp, sender: String? = nil, recipients: [String]? = nil,
                limits: ScanLimits = .defaults) {
        let split = MessageScanner.splitHeaders(of: message, maximumHeaderBytes: limits.maximumHeaderBytes)
        let scanner = MessageScanner(limits: limits)
        for header in split.headers {
            scanner.addHeader(name: header.name, value: header.value)
        }
        scanner.feed(split.body)
        let scan = scanner.finish()

        var envelopeSender = sender
        if envelopeSender == nil, let returnPath = scan.headerValue("Return-Path") {
            let address = AddressListParser.parse(Array(returnPath.utf8)).first?.address ?? ""
            envelopeSender = returnPath.contains("<>") ? "" : address
        }
        let fromAddress = scan.mailboxes("From").first?.address ?? ""
        let envelopeRecipients = recipients ?? ["To", "Cc", "Bcc"].flatMap { scan.mailboxes($0).map(\.address) }
        self.init(path: path, clientAddress: path == .local ? "127.0.0.1" : nil, envelopeSender: envelopeSender ?? fromAddress,
                  recipients: envelopeRecipients, headers: split.headers, bodyBytes: split.body.count, scan: scan)
    }
}
