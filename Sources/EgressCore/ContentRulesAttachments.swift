// The built-in rules on attachments, on scripts that submit local mail, and on what the
// decoder met (limits, broken MIME, invalid bytes). Part of `ContentRules`
// (ContentRules.swift), with the same contract: a rule never fails, it fires or it does not.

extension ContentRules {
    // MARK: Attachments

    static let executableExtensions: Set<String> = [
        "exe", "scr", "com", "pif", "cpl", "msi", "msp", "mst", "dll", "sys", "drv", "ocx", "jar", "lnk", "reg", "scf",
        "inf", "application", "gadget", "msc", "appx", "msix", "apk", "elf", "run", "app", "dmg", "pkg", "deb", "rpm",
    ]
    static let scriptExtensions: Set<String> = [
        "js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "ps1", "psm1", "psd1", "bat", "cmd", "sh", "bash", "py", "pl",
        "php", "rb", "vb", "sct", "chm", "url", "xll",
    ]
    static let diskImageExtensions: Set<String> = ["iso", "img", "vhd", "vhdx", "udf"]
    static let macroExtensions: Set<String> = ["docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm"]
    static let htmlExtensions: Set<String> = ["htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"]
    /// Extensions of harmless documents and images, which a double extension pretends to be.
    static let documentExtensions: Set<String> = [
        "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "rtf", "txt", "csv", "jpg", "jpeg", "png", "gif",
        "bmp", "tif", "tiff", "mp3", "mp4", "wav", "zip", "html", "htm",
    ]

    static func fileExtension(_ name: String) -> String {
        let trimmed = name.trimmingWhitespace().lowercased()
        guard let dot = trimmed.lastIndex(of: "."), trimmed.index(after: dot) < trimmed.endIndex else { return "" }
        return String(trimmed[trimmed.index(after: dot)...])
    }

    func checkAttachments(_ hits: inout HitCollector) {
        for attachment in input.scan.attachments {
            let name = attachment.name
            let fileExtension = Self.fileExtension(name)
            let label = name.isEmpty ? attachment.declaredType : name

            if Self.executableExtensions.contains(fileExtension) || attachment.sniffedType.isExecutable {
                hits.add(BuiltInSymbol.attachExecutable, detail: "\(label) (\(attachment.sniffedType.rawValue))")
            }
            if Self.scriptExtensions.contains(fileExtension) || attachment.sniffedType == .shebangScript {
                hits.add(BuiltInSymbol.attachScript, detail: label)
            }
            if Self.htmlExtensions.contains(fileExtension) || attachment.declaredType == "text/html" {
                hits.add(BuiltInSymbol.attachHTML, detail: label)
            }
            if Self.diskImageExtensions.contains(fileExtension) || attachment.sniffedType == .diskImage {
                hits.add(BuiltInSymbol.attachDiskImage, detail: label)
            }
            let entries = attachment.archiveEntries
            if Self.macroExtensions.contains(fileExtension)
                || entries.contains(where: { $0.lowercased().hasSuffix("vbaproject.bin") }) {
                hits.add(BuiltInSymbol.attachMacroDocument, detail: label)
            }
            if Self.hasDoubleExtension(name) {
                hits.add(BuiltInSymbol.attachDoubleExtension, detail: name)
            }
            if isTypeMismatch(attachment, fileExtension: fileExtension) {
                hits.add(BuiltInSymbol.attachTypeMismatch, detail: "\(label) is \(attachment.sniffedType.rawValue)")
            }
            if let hidden = entries.first(where: { entry in
                let inner = Self.fileExtension(entry)
                return Self.executableExtensions.contains(inner) || Self.scriptExtensions.contains(inner)
                    || Self.diskImageExtensions.contains(inner)
            }) {
                hits.add(BuiltInSymbol.archiveHidesExecutable, detail: "\(label): \(hidden)")
            }
            if attachment.hasEncryptedEntries {
                hits.add(BuiltInSymbol.archiveEncrypted, detail: label)
            }
        }
    }

    /// "invoice.pdf.exe", "photo.jpg     .scr": a document extension followed by a program one.
    static func hasDoubleExtension(_ name: String) -> Bool {
        let parts = name.lowercased().split(separator: ".").map { $0.trimmingWhitespace() }
        guard parts.count >= 3 else { return false }
        let last = parts[parts.count - 1]
        let previous = parts[parts.count - 2]
        let dangerous = executableExtensions.contains(last) || scriptExtensions.contains(last) || diskImageExtensions.contains(last)
        return dangerous && documentExtensions.contains(previous)
    }

    /// A program, script or archive whose name or declared type says document or image.
    func isTypeMismatch(_ attachment: Attachment, fileExtension: String) -> Bool {
        let sniffed = attachment.sniffedType
        guard sniffed.isExecutable || sniffed == .shebangScript || (sniffed.isArchive && sniffed != .zip) else {
            // Office files are zips, so a zip behind a document name is normal.
            return false
        }
        let harmlessName = ["pdf", "doc", "xls", "txt", "jpg", "jpeg", "png", "gif", "rtf", "csv"].contains(fileExtension)
        let type = attachment.declaredType
        let harmlessType = type.hasPrefix("image/") || type.hasPrefix("text/") || type == "application/pdf"
            || type == "application/msword"
        return harmlessName || harmlessType
    }

    // MARK: Local submissions and decoding

    /// Folders under a site's document root that the web server can write to, where attackers
    /// drop the scripts they upload. A site can live in a folder of any name, so these count
    /// only below a document-root folder. `uploads` and `upload` count anywhere.
    static let writableSiteFolders: Set<String> = ["uploads", "upload", "cache", "tmp", "temp", ".tmp", "files", "media", "images"]
    static let uploadFoldersAnywhere: Set<String> = ["uploads", "upload"]
    /// Folder names that are a site's document root on common hosting panels and distributions.
    static let documentRootFolders: Set<String> = ["public_html", "htdocs", "httpdocs", "www", "wwwroot", "html", "web", "public"]
    /// Folders shared by every user of the machine; no site's own script lives there.
    static let systemTemporaryPrefixes = ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/"]

    /// Returns the folder of `path` that makes it look like a dropped script, or nil. For example
    /// `/home/a/public_html/wp-content/uploads/x.php` gives `uploads`, while
    /// `/srv/files/site/index.php` gives nil, because `files` there is above the site.
    static func uploadFolder(inScriptPath path: String) -> String? {
        let lowered = path.lowercased()
        if let prefix = systemTemporaryPrefixes.first(where: { lowered.hasPrefix($0) }) {
            return prefix
        }
        var belowDocumentRoot = false
        for folder in lowered.split(separator: "/").dropLast() {
            let name = String(folder)
            if uploadFoldersAnywhere.contains(name) || (belowDocumentRoot && writableSiteFolders.contains(name)) {
                return name
            }
            if documentRootFolders.contains(name) || name == "wp-content" {
                belowDocumentRoot = true
            }
        }
        return nil
    }

    func checkLocalScript(_ hits: inout HitCollector) {
        guard input.facts.path == .local, hits.isEnabled(BuiltInSymbol.scriptInUploadDirectory) else { return }
        var paths: [String] = []
        for key in input.resolution.identity.keys where key.level == .script {
            if let colon = key.value.firstIndex(of: ":") {
                paths.append(String(key.value[key.value.index(after: colon)...]))
            }
        }
        // Without a verified stamp PHP's own header is the only hint; scoring may use it,
        // because it can only make the message look worse.
        for header in input.facts.headers where header.name.caseInsensitiveEquals(SubmissionStamper.phpScriptHeader) {
            if let script = PHPOriginatingScript(header.value) {
                paths.append(script.file)
            }
        }
        for path in paths {
            if let folder = Self.uploadFolder(inScriptPath: path) {
                hits.add(BuiltInSymbol.scriptInUploadDirectory, detail: "\(path) (in \(folder))")
                return
            }
        }
    }

    /// Replacement characters from which INVALID_CHARACTERS fires; a few are common in real
    /// mail from broken clients.
    static let invalidCharacterThreshold = 10

    func checkDecoding(_ hits: inout HitCollector) {
        let anomalies = input.scan.anomalies
        if anomalies.scanLimitReached {
            hits.add(BuiltInSymbol.scanLimitReached, detail: "\(input.scan.scannedBytes) of \(input.scan.bodyBytes) bytes")
        }
        if anomalies.nestingLimitReached {
            hits.add(BuiltInSymbol.mimeNestingLimit)
        }
        if anomalies.partLimitReached {
            hits.add(BuiltInSymbol.mimePartLimit)
        }
        if anomalies.brokenMultipart {
            hits.add(BuiltInSymbol.mimeBroken)
        }
        if anomalies.replacementCharacters >= Self.invalidCharacterThreshold {
            hits.add(BuiltInSymbol.invalidCharacters, detail: "\(anomalies.replacementCharacters) replaced")
        }
        if !anomalies.unknownCharsets.isEmpty {
            hits.add(BuiltInSymbol.unknownCharset, detail: anomalies.unknownCharsets.joined(separator: ", "))
        }
    }
}
