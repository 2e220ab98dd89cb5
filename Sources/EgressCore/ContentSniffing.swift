// Recognises the real type of an attachment from its first bytes (magic numbers), whatever
// its name and declared type say, and lists the entry names of zip archives.
//
// It reads only the bytes it is given (the head of the attachment, `attachmentInspectBytes`
// long) and must never read past them: every offset taken from the data is checked first.

enum ContentSniffer {
    /// Bytes at the start searched for "%PDF-", because readers accept junk before it.
    static let pdfSearchBytes = 1024
    /// Bytes looked at to tell HTML and text from binary data.
    static let textSampleBytes = 1024

    /// Returns the type that the leading bytes of a file reveal.
    static func sniff(_ head: [UInt8]) -> SniffedType {
        guard !head.isEmpty else { return .empty }
        if let type = signatureType(head) {
            return type
        }
        // ISO 9660 images carry "CD001" at the start of the volume descriptor at 32 KiB.
        if head.count >= 0x8006, head[0x8001..<0x8006].elementsEqual("CD001".utf8) {
            return .diskImage
        }
        if contains(head.prefix(pdfSearchBytes), Array("%PDF-".utf8)) {
            return .pdf
        }
        return looksLikeHTML(head) ? .html : (looksLikeText(head) ? .text : .unknown)
    }

    private static func signatureType(_ head: [UInt8]) -> SniffedType? {
        func starts(_ bytes: [UInt8]) -> Bool {
            head.count >= bytes.count && head[0..<bytes.count].elementsEqual(bytes)
        }
        if starts([0x4D, 0x5A]) { return .windowsExecutable }
        if starts([0x7F, 0x45, 0x4C, 0x46]) { return .elf }
        if starts([0xFE, 0xED, 0xFA, 0xCE]) || starts([0xFE, 0xED, 0xFA, 0xCF])
            || starts([0xCE, 0xFA, 0xED, 0xFE]) || starts([0xCF, 0xFA, 0xED, 0xFE]) {
            return .machO
        }
        if starts([0xCA, 0xFE, 0xBA, 0xBE]) {
            // Fat Mach-O binaries and Java classes share this magic; a fat binary has a small
            // architecture count where a class file has its version (45 and up).
            guard head.count >= 8 else { return .javaClass }
            let value = UInt32(head[4]) << 24 | UInt32(head[5]) << 16 | UInt32(head[6]) << 8 | UInt32(head[7])
            return value < 40 ? .machO : .javaClass
        }
        if starts([0x23, 0x21]) { return .shebangScript }
        if starts([0x4C, 0x00, 0x00, 0x00, 0x01, 0x14, 0x02, 0x00]) { return .windowsShortcut }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) || starts([0x50, 0x4B, 0x07, 0x08]) {
            return .zip
        }
        if starts(Array("Rar!\u{1A}\u{07}".utf8)) { return .rar }
        if starts([0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]) { return .sevenZip }
        if starts([0x1F, 0x8B]) { return .gzip }
        if starts(Array("BZh".utf8)) { return .bzip2 }
        if starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { return .xz }
        if starts(Array("MSCF".utf8)) { return .cabinet }
        if starts([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) { return .compoundFile }
        if starts(Array("{\\rtf".utf8)) { return .rtf }
        if starts([0x89, 0x50, 0x4E, 0x47]) { return .png }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts(Array("GIF8".utf8)) { return .gif }
        return nil
    }

    private static func looksLikeHTML(_ head: [UInt8]) -> Bool {
        let sample = head.prefix(textSampleBytes).map(asciiLowercase)
        let markers = ["<html", "<!doctype html", "<head", "<body", "<script", "<form", "<iframe", "<meta "]
        return markers.contains { contains(sample[...], Array($0.utf8)) }
    }

    /// Text: no NUL and at most one control character in 32 among the sampled bytes.
    private static func looksLikeText(_ head: [UInt8]) -> Bool {
        let sample = head.prefix(textSampleBytes)
        var controls = 0
        for byte in sample {
            if byte == 0 { return false }
            if byte < 0x20 && byte != 0x09 && byte != 0x0A && byte != 0x0D && byte != 0x0C && byte != 0x1B {
                controls += 1
            }
        }
        return controls * 32 <= sample.count
    }

    static func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first {
                var offset = 1
                while offset < needle.count && haystack[index + offset] == needle[offset] {
                    offset += 1
                }
                if offset == needle.count { return true }
            }
            index += 1
        }
        return false
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<index + needle.count].elementsEqual(needle) {
                return true
            }
            index += 1
        }
        return false
    }

    // MARK: Zip

    /// Entry names of a zip archive found in its leading bytes, from local file headers and
    /// any central directory records within reach, without duplicates; and whether an entry
    /// is encrypted (general purpose flag bit 0).
    static func zipEntries(_ bytes: [UInt8], maximumEntries: Int) -> (names: [String], encrypted: Bool) {
        var names: [String] = []
        var seen = Set<String>()
        var encrypted = false
        let count = bytes.count
        var index = 0
        while index + 4 <= count && names.count < maximumEntries {
            guard bytes[index] == 0x50, bytes[index + 1] == 0x4B else {
                index += 1
                continue
            }
            let kind = (bytes[index + 2], bytes[index + 3])
            var nameOffset = 0
            var nameLength = 0
            var flags: UInt16 = 0
            if kind == (0x03, 0x04), index + 30 <= count {
                flags = littleEndian16(bytes, index + 6)
                nameLength = Int(littleEndian16(bytes, index + 26))
                nameOffset = index + 30
            } else if kind == (0x01, 0x02), index + 46 <= count {
                flags = littleEndian16(bytes, index + 8)
                nameLength = Int(littleEndian16(bytes, index + 28))
                nameOffset = index + 46
            } else {
                index += 2
                continue
            }
            guard nameLength > 0, nameOffset + nameLength <= count else {
                index += 4
                continue
            }
            let name = String(decoding: bytes[nameOffset..<nameOffset + nameLength], as: UTF8.self)
            if flags & 1 != 0 {
                encrypted = true
            }
            if seen.insert(name).inserted {
                names.append(name)
            }
            index = nameOffset + nameLength
        }
        return (names, encrypted)
    }

    private static func littleEndian16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }
}
