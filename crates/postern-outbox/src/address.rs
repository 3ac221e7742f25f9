//! Email addresses as a sender gives them: checked before anything is queued.
//!
//! Purpose: refuse, with a sentence a developer can act on, an address no server would take or
//! that could smuggle a command into the SMTP envelope or a header into the message.
//! Non-goal: full RFC 5322 `addr-spec` (quoted local parts, comments, domain literals): submission
//! servers refuse most of those anyway, and every address here goes into an SMTP envelope.
//! Key decision: internationalized addresses (UTF-8 in the local part or the domain) are accepted;
//! the session asks for SMTPUTF8 and says so if the server does not offer it.

/// Why an address is refused, in words for a field-level error.
pub fn address_problem(address: &str) -> Option<&'static str> {
    if address.is_empty() {
        return Some("is empty");
    }
    if address.len() > 254 {
        return Some("is longer than 254 bytes");
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains a space or a control character");
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Some("has no @");
    };
    local_problem(local).or_else(|| domain_problem(domain))
}

fn local_problem(local: &str) -> Option<&'static str> {
    if local.is_empty() {
        return Some("has nothing before the @");
    }
    if local.len() > 64 {
        return Some("has more than 64 bytes before the @");
    }
    if local.contains(['<', '>', '(', ')', '[', ']', '\\', ',', ';', ':', '"', '@']) {
        return Some("contains a character not allowed before the @ (<>()[]\\,;:\"@)");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Some("has a misplaced dot before the @");
    }
    None
}

fn domain_problem(domain: &str) -> Option<&'static str> {
    if domain.is_empty() {
        return Some("has no domain after the @");
    }
    if domain.len() > 253 {
        return Some("has a domain longer than 253 bytes");
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || !c.is_ascii())
    };
    if !domain.split('.').all(label_ok) {
        return Some("has a domain that is not a valid host name");
    }
    None
}

/// The domain of a checked address, lower-cased (for Message-IDs).
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.to_lowercase())
}

/// Adds `address` to `list` unless it is already there (compared without case).
pub fn push_unique(list: &mut Vec<String>, address: &str) {
    if !list.iter().any(|known| known.eq_ignore_ascii_case(address)) {
        list.push(address.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_pass() {
        for address in [
            "alice@example.com",
            "a.b+tag@sub.example.co.uk",
            "x@localhost",
            "user_1@xn--bcher-kva.example",
            "jörg@bücher.example",
            "o'brien@example.ie",
        ] {
            assert_eq!(address_problem(address), None, "{address}");
        }
    }

    #[test]
    fn bad_addresses_say_why() {
        let cases = [
            ("", "is empty"),
            ("alice", "has no @"),
            ("@example.com", "has nothing before the @"),
            ("alice@", "has no domain after the @"),
            (
                "al ice@example.com",
                "contains a space or a control character",
            ),
            (
                "alice@example.com\r\nRCPT TO:<x@y>",
                "contains a space or a control character",
            ),
            (
                "<alice@example.com>",
                "contains a character not allowed before the @ (<>()[]\\,;:\"@)",
            ),
            (
                "a@b@example.com",
                "contains a character not allowed before the @ (<>()[]\\,;:\"@)",
            ),
            (
                "alice@exa_mple.com",
                "has a domain that is not a valid host name",
            ),
            (
                "alice@example..com",
                "has a domain that is not a valid host name",
            ),
            (
                "alice@-example.com",
                "has a domain that is not a valid host name",
            ),
            (".alice@example.com", "has a misplaced dot before the @"),
        ];
        for (address, problem) in cases {
            assert_eq!(address_problem(address), Some(problem), "{address:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            address_problem(&long_local),
            Some("has more than 64 bytes before the @")
        );
    }

    #[test]
    fn unique_lists_ignore_case() {
        let mut list = vec!["A@example.com".to_owned()];
        push_unique(&mut list, "a@EXAMPLE.com");
        push_unique(&mut list, "b@example.com");
        assert_eq!(list, ["A@example.com", "b@example.com"]);
        assert_eq!(domain_of("x@Example.COM").as_deref(), Some("example.com"));
    }
}
