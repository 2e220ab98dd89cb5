// The phrase lists of the built-in content rules, as PCRE2 patterns, in English, German,
// French, Spanish, Italian, Portuguese, Dutch, Polish, Russian, Japanese and Chinese.
//
// Each list describes what a kind of abuse says (account verification, password expiry,
// payment lures, advance-fee fraud, bulk advertising, adult and pharmacy spam), not the
// wording of any one message. Latin and Cyrillic phrases are matched between word
// boundaries; Japanese and Chinese ones, written without spaces, anywhere; case does not
// matter. The phrases use a small regular-expression subset that `PhraseMatcher` expands
// into plain strings: literal text, (?:a|b) groups, "?" after a character or group,
// [ab] classes, escaped characters, and \w* at the end for "any word ending".

enum PhrasePatterns {
    /// The phrases of one category: word phrases, matched between word boundaries, and
    /// phrases of scripts written without spaces, matched anywhere.
    struct PhraseList {
        var words: [String]
        var unspaced: [String] = []
    }

    static func pattern(words: [String], unspaced: [String] = []) -> PhraseList {
        PhraseList(words: words, unspaced: unspaced)
    }

    static let accountVerification = pattern(words: [
        // English
        "verify your (?:account|identity|e-?mail(?: address)?|mailbox|details|information)",
        "confirm your (?:account|identity|details|information|e-?mail(?: address)?|mailbox|password)",
        "validate your (?:account|mailbox|e-?mail(?: address)?)",
        "(?:your )?account (?:has been|was|will be|is) (?:temporarily )?(?:suspended|locked|limited|disabled|deactivated|closed|restricted|blocked|on hold)",
        "(?:unusual|suspicious|unauthori[sz]ed) (?:sign-?in|log-?in|activity|access)",
        "update your (?:account|billing|payment) (?:information|details|info)",
        "reactivate your account", "restore (?:your )?account access", "account verification",
        // German
        "bestätigen sie ihr(?:e|en)? (?:konto|identität|daten|e-?mail-?adresse)", "verifizieren sie ihr(?:e|en)? (?:konto|identität|daten)",
        "ihr konto (?:wurde|wird) (?:vorübergehend )?(?:gesperrt|eingeschränkt|deaktiviert)", "kontoverifizierung",
        "ungewöhnliche aktivität", "aktualisieren sie ihre (?:daten|kontodaten|zahlungsdaten)",
        // French
        "vérifie[rz] votre (?:compte|identité|adresse)", "confirme[rz] (?:votre compte|votre identité|vos informations|vos coordonnées)",
        "votre compte (?:a été|sera|est) (?:temporairement )?(?:suspendu|bloqué|désactivé|limité|restreint)", "activité inhabituelle",
        // Spanish
        "verifi(?:que|car|ca) (?:su|tu) cuenta", "confirm(?:e|ar|a) (?:su|tu) (?:cuenta|identidad|información|datos)",
        "(?:su|tu) cuenta (?:ha sido|será|fue|está) (?:temporalmente )?(?:suspendida|bloqueada|desactivada|limitada|restringida)",
        "actividad (?:inusual|sospechosa)",
        // Italian
        "verifica(?:re)? il (?:tuo|suo) account", "conferma(?:re)? (?:il tuo account|la tua identità|i tuoi dati)",
        "il (?:tuo|suo) account (?:è stato|sarà|è) (?:temporaneamente )?(?:sospeso|bloccato|disattivato|limitato)", "attività insolita",
        // Portuguese
        "verifi(?:que|car) (?:sua|a sua) conta", "confirm(?:e|ar) (?:sua conta|seus dados|sua identidade)",
        "(?:sua|a sua) conta (?:foi|será|está) (?:temporariamente )?(?:suspensa|bloqueada|desativada|limitada)", "atividade (?:incomum|suspeita)",
        // Dutch
        "verifieer uw (?:account|rekening|identiteit|gegevens)", "bevestig uw (?:account|gegevens|identiteit)",
        "uw (?:account|rekening) (?:is|wordt) (?:tijdelijk )?(?:geblokkeerd|opgeschort|beperkt)",
        // Polish
        "zweryfikuj (?:swoje|twoje) konto", "(?:twoje|pana|pani) konto zostało (?:zablokowane|zawieszone)",
        // Russian
        "подтвердите (?:ваш|свой|вашу|свою) (?:аккаунт|учетную запись|учётную запись|личность|адрес)",
        "ваш (?:аккаунт|счет|счёт) (?:был |будет )?(?:заблокирован|приостановлен|ограничен)", "подозрительн(?:ая|ой|ую) активност",
    ], unspaced: [
        "アカウント(?:の)?(?:確認|認証|停止|凍結|ロック)", "本人確認", "账户(?:验证|冻结|异常)", "帐户(?:验证|冻结|异常)", "账号(?:验证|冻结|异常)",
    ])

    static let passwordExpiry = pattern(words: [
        // English
        "password (?:will |is about to |is going to )?expire", "password (?:has )?expired", "password expir(?:y|ation|es)",
        "mail ?box (?:is )?(?:full|almost full|over (?:its )?quota|will be (?:deleted|deactivated|closed|suspended))",
        "(?:e-?mail|mail ?box) (?:storage|quota) (?:is )?(?:full|exceeded|almost full)", "quota (?:limit )?(?:has been )?(?:exceeded|reached)",
        "keep (?:using )?(?:your )?(?:current|same) password", "(?:change|reset|update) your password (?:now|immediately|today|within)",
        "incoming (?:e-?mails?|messages) (?:are |have been )?(?:on hold|pending|suspended|blocked)",
        // German
        "(?:passwort|kennwort) (?:läuft|ist) (?:bald |heute )?ab", "(?:passwort|kennwort) (?:ist )?abgelaufen", "postfach (?:ist )?(?:voll|fast voll)",
        "speicherplatz (?:ist )?(?:voll|überschritten|erschöpft)", "speicherkontingent",
        // French
        "mot de passe (?:expire|a expiré|va expirer|expirera)", "boîte (?:aux lettres|mail|de réception) (?:est )?(?:pleine|saturée)",
        "quota (?:est )?(?:dépassé|atteint)",
        // Spanish
        "contraseña (?:caduca|expira|ha caducado|ha expirado|caducará|expirará)", "buzón (?:está )?(?:lleno|casi lleno)", "cuota (?:excedida|superada)",
        // Italian
        "password (?:scade|è scaduta|scadrà|in scadenza)", "casella (?:di posta )?(?:è )?(?:piena|quasi piena)", "quota superata",
        // Portuguese
        "senha (?:expira|expirou|vai expirar|irá expirar)", "caixa (?:de correio|postal) (?:está )?cheia", "cota (?:excedida|atingida)",
        // Dutch and Polish
        "wachtwoord (?:verloopt|is verlopen)", "mailbox (?:is )?vol", "hasło (?:wygasa|wygasło)", "skrzynka (?:jest )?pełna",
        // Russian
        "срок действия (?:вашего )?пароля", "пароль (?:истекает|истек|истёк)", "почтовый ящик (?:переполнен|заполнен)",
    ], unspaced: [
        "パスワード(?:の)?(?:有効期限|期限切れ)", "メールボックス(?:が|の容量が)?(?:いっぱい|満杯)", "密码(?:已)?(?:过期|到期)", "邮箱(?:已满|容量不足)",
    ])

    static let paymentLure = pattern(words: [
        // English
        "(?:overdue|outstanding|unpaid|past due) (?:invoice|payment|balance|bill)", "payment (?:is )?(?:overdue|failed|declined|was declined)",
        "(?:wire|bank|swift) transfer (?:details|confirmation|copy|slip)", "remittance advice", "swift copy", "proof of payment",
        "(?:see|find|open|view|download) (?:the )?attached invoice", "invoice (?:is )?attached", "update (?:your )?payment (?:method|details|information)",
        "billing (?:problem|issue|error)", "refund (?:of|is) (?:pending|available|approved)", "you have received a (?:payment|transfer|fax)",
        "pending (?:payment|transaction|refund)",
        // German
        "(?:offene|unbezahlte|überfällige|ausstehende) (?:rechnung|zahlung|forderung)", "zahlungserinnerung", "letzte mahnung", "mahnung",
        "rechnung (?:im|als) anhang", "zahlung (?:fehlgeschlagen|abgelehnt)", "überweisungsbestätigung", "zahlungsdaten aktualisieren",
        // French
        "facture (?:impayée|en attente|ci-jointe|jointe|en retard)", "paiement (?:refusé|échoué|en attente|en retard)", "avis de virement",
        "relance de paiement", "preuve de paiement",
        // Spanish
        "factura (?:pendiente|vencida|adjunta|impagada)", "pago (?:pendiente|rechazado|fallido)", "comprobante de (?:pago|transferencia)",
        "transferencia (?:interbancaria|bancaria)", "aviso de pago",
        // Italian
        "fattura (?:scaduta|allegata|non pagata|in sospeso)", "pagamento (?:rifiutato|non riuscito|in sospeso)", "sollecito di pagamento",
        "bonifico bancario", "ricevuta di (?:pagamento|bonifico)",
        // Portuguese
        "fatura (?:vencida|em aberto|anexa|pendente)", "boleto (?:em anexo|vencido|bancário)", "pagamento (?:recusado|pendente)",
        "comprovante de (?:pagamento|transferência)",
        // Dutch and Polish
        "openstaande (?:factuur|betaling|rekening)", "betalingsherinnering", "factuur in de bijlage", "zaległa (?:faktura|płatność)",
        "faktura w załączniku",
        // Russian
        "сч[её]т на оплату", "неоплаченн(?:ый|ого|ые) сч[её]т", "платежное поручение", "платёжное поручение", "задолженност",
    ], unspaced: [
        "請求書(?:を)?(?:添付|送付)", "お支払い(?:が)?(?:確認できません|未完了|遅延)", "发票", "付款(?:通知|失败)", "汇款(?:单|确认)",
    ])

    static let advanceFee = pattern(words: [
        "next of kin", "(?:millions?|billion) (?:of )?(?:us )?(?:dollars|usd|euros?|pounds|gbp)", "(?:us )?(?:dollars|usd) ?million",
        "beneficiary", "(?:late|deceased) (?:client|husband|wife|father|customer|uncle)", "(?:inheritance|compensation|lottery|prize|winning) (?:fund|claim|award|payment)",
        "(?:your e-?mail|you) (?:address )?(?:has|have) (?:been selected|won)", "claims? (?:agent|officer|department)", "atm (?:card|master ?card|visa)",
        "diplomatic (?:courier|agent|bag)", "consignment (?:box|boxes)", "barrister", "confidential (?:business )?(?:proposal|transaction|deal)",
        "strictly confidential", "urgent (?:business|assistance|reply|response) (?:proposal|needed|required)?", "mutual benefit",
        "(?:fund|funds) (?:transfer|release)", "transfer (?:the|this) (?:sum|fund|funds|money)", "the sum of",
        "dormant account", "foreign partner", "business proposal", "security company", "investment (?:partner|proposal)",
        "cash prize", "western union", "money ?gram", "united nations", "payment notification", "remit(?:ted|tance)? to you",
        "(?:total|sum|amount) of \\$", "unclaimed (?:funds?|prize|inheritance)", "(?:lottery|prize) (?:winner|winning|board)",
        // Other languages
        "lotteriegewinn", "sie haben gewonnen", "erbschaft", "begünstigte[rn]?", "héritage", "vous avez gagné", "légataire",
        "herencia", "usted ha ganado", "beneficiario", "eredità", "hai vinto", "herança", "você ganhou", "наследств\\w*", "вы выиграли",
    ])

    static let bulkAdvertising = pattern(words: [
        // English
        "click here", "click below", "100% (?:free|guaranteed|satisfied|satisfaction|natural)", "act now", "limited time(?: only| offer)?",
        "(?:order|buy|call|apply|join|sign up|register) (?:now|today)", "special (?:offer|promotion|deal)", "(?:lowest|best|unbeatable) prices?",
        "money back", "risk[- ]free", "no (?:obligation|cost|fees|credit check|catch|strings attached)", "(?:free|complimentary) (?:trial|gift|offer|access|quote|sample|consultation)",
        "(?:extra|earn|make) (?:extra )?(?:cash|money|income|\\$)", "work(?:ing)? from home", "(?:double|increase|boost) your (?:income|sales|traffic)",
        "(?:this|it) is not (?:a )?spam", "you are receiving this (?:e-?mail|message|newsletter)", "dear (?:friend|sir|madam|customer|user|member|valued)",
        "once in a lifetime", "while supplies last", "congratulations", "cash bonus", "credit card", "mortgage rates?", "(?:lose|loose) weight",
        "(?:satisfaction|results) guaranteed", "as seen on", "(?:don'?t|do not) (?:delete|miss)", "exclusive (?:deal|offer)", "free",
        "visit our (?:web ?site|store)", "great (?:deals?|offers?)",
        "discount", "hot (?:deals?|offer)", "amazing", "guaranteed", "winner", "cheap", "save up to", "bonus",
        "marketing", "promotion", "advertis(?:e|ing|ement)", "website traffic", "search engines?", "investment", "income",
        "(?:traffic|visitors|hits) to your (?:web ?site|site)", "generate (?:sales|traffic|leads|hits)", "link exchange", "insider secrets?",
        "top placement", "(?:first|top) page of google", "seo services?", "no (?:prescription|credit card) (?:needed|required)",
        "full details", "learn more", "act fast", "(?:call|order) toll[- ]free", "apply online", "pre-?approved", "get paid",
        // German, French, Spanish, Italian, Portuguese, Dutch
        "jetzt bestellen", "kostenlos", "gratis", "sonderangebot", "nur für kurze zeit", "klicken sie hier", "rabatt", "angebot",
        "cliquez ici", "gratuit", "offre spéciale", "sans engagement", "promotion", "réduction",
        "haga clic aquí", "oferta especial", "sin compromiso", "descuento", "oferta",
        "clicca qui", "offerta speciale", "sconto", "clique aqui", "oferta especial", "desconto", "klik hier", "aanbieding", "korting",
        // Russian
        "бесплатн\\w*", "скидк\\w*", "акци[яиюй]", "только сегодня", "спешите", "выгодн\\w*", "закажите", "звоните", "распродаж\\w*",
        "предложени[ея]", "цен[аы]", "рассылк\\w*", "клиент\\w*", "продаж\\w*", "процент\\w*", "вклад\\w*", "инвестиц\\w*",
        "заработ\\w*", "доход\\w*",
    ], unspaced: [
        "無料", "今すぐ", "限定", "副収入", "月収", "稼げ", "クリック", "広告", "未承諾", "激安", "特価", "格安", "収入", "儲",
        "キャンペーン", "プレゼント", "期間限定", "登録", "コチラ", "開業", "現金", "融資", "即日", "販売", "万円",
        "免费", "优惠", "点击", "代开", "贷款", "促销", "推广", "客户", "外贸", "批量", "群发", "营销", "增值税", "开发",
    ])

    static let adult = pattern(words: [
        "porn\\w*", "xxx", "horny", "nude", "naked", "milf", "teen(?:s|ie|ies)?", "erotic\\w*", "hardcore", "orgasm\\w*", "sex(?:y|ual)?",
        "puss(?:y|ies)", "cocks?", "cunts?", "dicks?", "blow ?jobs?", "anal", "cum(?:shot)?s?", "bestiality", "fetish\\w*", "nympho\\w*",
        "hot(?:test)? (?:girls|babes|singles|women|chicks|site)", "lonely (?:wives|women|housewives)", "webcam (?:girls|chat)", "escort",
        "lesbian\\w*", "full length movies", "young girls", "spreading", "turns? me on", "getting off", "get off", "dirty",
        "c\\*ck", "p\\*ssy", "fuck\\w*", "sluts?", "adult (?:site|dating|content|videos?)", "dating", "singles",
        "sexkontakte", "erotik", "секс\\w*", "интим\\w*", "знакомств\\w*",
    ], unspaced: [
        "出会い", "アダルト", "エッチ", "セックス", "人妻", "無修正", "熟女", "セフレ", "色情", "成人", "裏ビデオ", "写メ", "マニア",
        "内射", "屄",
    ])

    static let pharmacy = pattern(words: [
        "viagra", "cialis", "levitra", "valium", "xanax", "phentermine", "vicodin", "oxycontin", "tramadol", "ambien", "soma", "propecia",
        "prescriptions?", "pharmacy", "meds", "medz", "pills", "(?:penis|male) enlargement", "enlarge your", "erectile", "erection", "impotence",
        "weight loss", "diet pills", "herbal", "generic (?:drugs|viagra|cialis)", "doctor approved", "fda(?:-approved| approved)?", "drugs",
        "rx", "penis", "libido", "enlarge(?:ment)?",
    ])

    /// Text that tells the reader how to leave a mailing list.
    static let unsubscribeText = pattern(words: [
        "unsubscribe", "to be removed", "remove me", "opt[- ]?out", "reply with \"?remove", "no longer wish to receive",
        "removed from (?:our|this|the) (?:list|mailing)", "abmelden", "désinscri\\w*", "se désabonner", "darse de baja", "cancelar (?:la )?suscripción",
        "отписаться", "отказаться от рассылки",
    ], unspaced: ["配信停止", "受信拒否", "配信解除", "退订"])

    /// The label that Japanese law requires on unsolicited advertising, in subject or text.
    static let japaneseAdvertisementLabel = "未承諾広告"

    /// The phrase categories, all matched in one pass over the text.
    enum Category: Int, CaseIterable {
        case accountVerification, passwordExpiry, paymentLure, advanceFee, pharmacy, adult, unsubscribe, bulkAdvertising
    }

    static func phrases(of category: Category) -> PhraseList {
        switch category {
        case .accountVerification: return accountVerification
        case .passwordExpiry: return passwordExpiry
        case .paymentLure: return paymentLure
        case .advanceFee: return advanceFee
        case .pharmacy: return pharmacy
        case .adult: return adult
        case .unsubscribe: return unsubscribeText
        case .bulkAdvertising: return bulkAdvertising
        }
    }


    /// A Subject that labels itself as advertising, as laws in several countries require.
    static let advertisementSubject = "^\\s*[\\[(]?\\s*(?:adv|ad|advert|werbung|publicidad|publicité|pub|реклама)\\s*[\\]):]|未承諾広告|\\[ad\\]"

    /// A Subject that pretends to be a reply or forward: "Re:", "RE[4]:", "AW:", "Fwd:" ...
    static let replySubject = "^\\s*(?:re|aw|sv|antw|ref|rif|odp|vs|r|res|fw|fwd|wg|tr|rv)\\s*(?:\\[[0-9]+\\]|\\([0-9]+\\))?\\s*:"
}
