// libFuzzer entry point for the MIME decoder: every input is scanned as a whole message with
// the default limits, and again in small chunks with tiny limits, so the code paths at each
// limit and at every chunk border get hostile input too. A crash, a hang or a sanitizer
// report is a bug in the decoder. The script fuzz/run builds and runs this file.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let message = Array(UnsafeBufferPointer(start: data, count: size))
    _ = MessageScanner.scan(message: message)

    var tiny = ScanLimits()
    tiny.scanLimitBytes = 4096
    tiny.maximumNestingDepth = 3
    tiny.maximumParts = 8
    tiny.maximumHeaderBytes = 512
    tiny.maximumPartHeaderBytes = 128
    tiny.maximumLineBytes = 40
    tiny.maximumTextBytes = 256
    tiny.maximumLinks = 4
    tiny.maximumAttachments = 2
    tiny.attachmentInspectBytes = 64
    tiny.maximumArchiveEntries = 2

    let split = MessageScanner.splitHeaders(of: message, maximumHeaderBytes: tiny.maximumHeaderBytes)
    let scanner = MessageScanner(limits: tiny)
    for header in split.headers {
        scanner.addHeader(name: header.name, value: header.value)
    }
    let chunkSize = Int(message.first ?? 0) % 13 + 1
    var offset = 0
    while offset < split.body.count {
        let end = min(split.body.count, offset + chunkSize)
        scanner.feed(Array(split.body[offset..<end]))
        offset = end
    }
    _ = scanner.finish()
    return 0
}
