// egress-sendmail: the submission wrapper installed as PHP's sendmail_path
// (`sendmail_path = /usr/sbin/egress-sendmail -t -i`). It stamps each message with who
// submitted it and passes it, with the same arguments, to the real sendmail.
//
// Steps, in this order:
//   1. With the setgid privilege: read the config file's identity section and the stamp key.
//   2. Drop the privilege for good, before running or reading anything else.
//   3. Commands that submit nothing (-bp, -bs, -q, -I, ...) run the real sendmail directly.
//   4. Read the message, remove every stamp header in it, add one fresh stamp.
//   5. Run the real sendmail with the message on its standard input and exit with its status.
//
// It must never lose a message: without a key, or with an unreadable config, the message goes
// out unstamped (the daemon then counts it as local-unverified) with a warning in syslog and
// on standard error. It exits with EX_TEMPFAIL (75) only when the message could not be
// handed to the real sendmail at all.
//
// Environment (honoured only when the wrapper runs without setgid or setuid privilege, so that
// a caller cannot point a privileged wrapper at another file):
//   EGRESS_MILTER_CONFIG   config file; default /etc/egress-milter/egress-milter.yaml
// Always honoured, because the real sendmail runs with the caller's own ids:
//   EGRESS_REAL_SENDMAIL   the real sendmail; default /usr/sbin/sendmail
//   SCRIPT_FILENAME        the script path (set by CGI and suEXEC), recorded in the stamp

import EgressCore
import Glibc

let defaultConfigurationPath = "/etc/egress-milter/egress-milter.yaml"
let defaultRealSendmailPath = "/usr/sbin/sendmail"

WrapperLog.open()
signal(SIGPIPE, SIG_IGN)

let arguments = Array(CommandLine.arguments.dropFirst())

// sendmail itself has no --help, so these two alone can only be a person asking the wrapper.
if arguments == ["--help"] || arguments == ["--version"] {
    print(arguments == ["--help"] ? wrapperUsage : "egress-sendmail \(egressMilterVersion)")
    exit(0)
}

let command = SendmailArguments(arguments)
let realSendmailPath = environmentValue("EGRESS_REAL_SENDMAIL") ?? defaultRealSendmailPath

// Step 1: only what needs the group, and only for commands that submit a message.
var settings = IdentitySettings()
var key: StampKey?
if command.submitsMessage {
    let isPrivileged = Privileges.areElevated
    let configurationPath = (isPrivileged ? nil : environmentValue("EGRESS_MILTER_CONFIG")) ?? defaultConfigurationPath
    settings = identitySettings(fromFile: configurationPath)
    do {
        key = try StampKey.load(contentsOf: settings.stampKeyFile)
    } catch {
        WrapperLog.warning("submitting without a stamp: \(error)")
    }
}

// Step 2.
if let problem = Privileges.dropPermanently() {
    WrapperLog.error("\(problem); not submitting the message")
    exit(RealSendmail.temporaryFailureStatus)
}

// Step 3.
guard command.submitsMessage else {
    RealSendmail.replaceProcess(path: realSendmailPath, arguments: arguments)
}

// Step 4.
guard let input = readStandardInput() else {
    WrapperLog.error("cannot read the message from standard input: \(String(cString: strerror(errno)))")
    exit(RealSendmail.temporaryFailureStatus)
}
var generator = SystemRandomNumberGenerator()
let nonce = (0..<SubmissionStamp.nonceByteCount).map { _ in UInt8.random(in: 0...255, using: &generator) }
let result = SubmissionStamper.stamp(
    input, headerName: settings.stampHeader, key: key, submitter: currentSubmitter(envelopeSender: command.envelopeSender),
    timestamp: Int64(time(nil)), nonce: nonce)
if result.removedStampCount > 0 {
    WrapperLog.warning("removed \(result.removedStampCount) \(settings.stampHeader) header(s) that the message already had (uid \(getuid()))")
}

// Step 5.
exit(RealSendmail.run(path: realSendmailPath, arguments: arguments, message: result.message))

var wrapperUsage: String {
    """
    Usage: egress-sendmail [sendmail options] [recipient ...]

    A stand-in for sendmail(1), for PHP's sendmail_path:
        sendmail_path = /usr/sbin/egress-sendmail -t -i
    It adds an X-Egress-Submitter stamp (uid, account, working directory, script, signed with
    the key in identity.stamp_key_file) to the message on standard input and runs the real
    sendmail with the same arguments. Commands that submit nothing (-bp, -bs, -q, -I ...) go
    to the real sendmail unchanged. Without a usable key the message goes out unstamped.

    Environment: EGRESS_REAL_SENDMAIL (default \(defaultRealSendmailPath)); EGRESS_MILTER_CONFIG
    (default \(defaultConfigurationPath), ignored when the wrapper runs setgid).
    Exit status: that of the real sendmail, or 75 when the message could not be handed to it.
    See egress-sendmail(8).
    """
}
