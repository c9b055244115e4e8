//! What the relay lets through, decided before anything reaches Exchange Online: whose
//! name a message may carry, whether its header is well formed, and how many messages a
//! minute go out (Exchange Online's limit, so that excess is a retry at the device rather
//! than a refusal from Microsoft).

use crate::settings::Settings;
use crate::signin::Account;
use crate::storage::{self, Storage, StoreError};

/// Messages Exchange Online accepts from one mailbox per minute.
pub const MESSAGES_PER_MINUTE: usize = 30;
/// The store key of the relay's recent submissions.
pub const RATE_KEY: &str = "relay/recent/v1";
/// How often a reservation is tried again after another connection took a slot first.
const ATTEMPTS: usize = 16;

/// The addresses the relay sends as: the signed-in account's own addresses, and the
/// Device Email Address when it is one of them or the administrator declared it an alias
/// or proxy address of the account (`from.alias-sender`). Anything else Exchange refuses
/// with SendAsDenied (554 5.2.252), so the relay refuses it first, with the reason.
pub struct Senders {
    addresses: Vec<String>,
}

impl Senders {
    pub fn new(settings: &Settings, account: &Account) -> Self {
        let mut addresses: Vec<String> = [account.upn(), account.device_email_address()]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect();
        let device_email = settings.device_email.trim();
        if !device_email.is_empty()
            && (settings.from.alias_sender
                || addresses
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(device_email)))
        {
            addresses.push(device_email.to_owned());
        }
        addresses.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        Self { addresses }
    }

    /// Whether mail may go out as `address` (letter case aside).
    pub fn allows(&self, address: &str) -> bool {
        !address.is_empty()
            && self
                .addresses
                .iter()
                .any(|a| a.eq_ignore_ascii_case(address))
    }

    /// The addresses, for a refusal that says what would pass.
    pub fn list(&self) -> String {
        self.addresses.join(", ")
    }
}

/// Why a message's header block is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// NUL, a bare CR, or a line that is neither a field nor its continuation: what an
    /// injected header looks like, and what Exchange would misread.
    Malformed(&'static str),
    /// No `From:` field, or more than one.
    From(&'static str),
    /// A `From:` or `Sender:` address the relay does not send as.
    NotASender(String),
}

/// The header block of a message, as far as the relay reads it.
pub struct Header<'a> {
    lines: Vec<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// Splits `block` (the bytes up to the empty line, line endings as sent) into fields,
    /// refusing what is not a well-formed header (RFC 5322 §2.2).
    pub fn parse(block: &'a [u8]) -> Result<Self, HeaderProblem> {
        if block.contains(&0) {
            return Err(HeaderProblem::Malformed("it contains a NUL byte"));
        }
        let mut lines = Vec::new();
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.contains(&b'\r') {
                return Err(HeaderProblem::Malformed(
                    "it contains a bare carriage return",
                ));
            }
            let continuation = matches!(line[0], b' ' | b'\t');
            if continuation {
                if lines.is_empty() {
                    return Err(HeaderProblem::Malformed(
                        "it starts with a continuation line",
                    ));
                }
            } else {
                let Some(colon) = line.iter().position(|&b| b == b':') else {
                    return Err(HeaderProblem::Malformed(
                        "a line is neither a field nor a continuation",
                    ));
                };
                let name = &line[..colon];
                if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
                    return Err(HeaderProblem::Malformed(
                        "a field name is not printable ASCII",
                    ));
                }
            }
            lines.push(line);
        }
        Ok(Self { lines })
    }

    /// The unfolded values of every field named `name` (letter case aside).
    fn values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = Vec::new();
        let mut current: Option<usize> = None;
        for line in &self.lines {
            if matches!(line[0], b' ' | b'\t') {
                if let Some(i) = current {
                    values[i].push_str(&String::from_utf8_lossy(line));
                }
                continue;
            }
            current = None;
            let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
            if line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
                values.push(String::from_utf8_lossy(&line[colon + 1..]).into_owned());
                current = Some(values.len() - 1);
            }
        }
        values
    }

    /// The value of the `Message-ID` field, if there is one.
    pub fn message_id(&self) -> Option<String> {
        self.values("Message-ID")
            .first()
            .map(|v| v.trim().chars().take(200).collect())
    }

    /// Checks that `From:` names exactly one mailbox and that it, and `Sender:` if
    /// present, are addresses the relay sends as.
    pub fn check_senders(&self, senders: &Senders) -> Result<(), HeaderProblem> {
        let from = self.values("From");
        let [from] = from.as_slice() else {
            return Err(HeaderProblem::From(if from.is_empty() {
                "the message has no From field"
            } else {
                "the message has more than one From field"
            }));
        };
        let addresses = mailboxes(from);
        let [address] = addresses.as_slice() else {
            return Err(HeaderProblem::From(
                "its From field must name exactly one address",
            ));
        };
        if !senders.allows(address) {
            return Err(HeaderProblem::NotASender(address.clone()));
        }
        for sender in self.values("Sender") {
            for address in mailboxes(&sender) {
                if !senders.allows(&address) {
                    return Err(HeaderProblem::NotASender(address));
                }
            }
        }
        Ok(())
    }
}

/// The addresses of a mailbox list (`Name <a@b>, c@d`): each `<…>` when there is one,
/// otherwise the bare word with an `@`. Quoted display names and comments are skipped.
fn mailboxes(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut quoted = false;
    let mut depth = 0u32;
    let mut item = String::new();
    let mut flush = |item: &mut String| {
        let text = std::mem::take(item);
        if let Some(start) = text.rfind('<') {
            let rest = &text[start + 1..];
            let end = rest.find('>').unwrap_or(rest.len());
            found.push(rest[..end].trim().to_owned());
        } else if let Some(word) = text.split_whitespace().find(|w| w.contains('@')) {
            found.push(word.to_owned());
        }
    };
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            ',' if !quoted && depth == 0 => flush(&mut item),
            _ if quoted || depth > 0 => {}
            c => item.push(c),
        }
    }
    flush(&mut item);
    found
}

/// The relay's recent submissions (Unix seconds), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct RecentSubmissions {
    pub version: storage::RecordVersion<{ storage::records::RELAY_RATE }>,
    /// Empty when a stored record lacks it ([`storage::Record::defaults`]).
    pub at: Vec<u64>,
}

/// Takes one of the minute's [`MESSAGES_PER_MINUTE`] slots at `now`, or says in how many
/// seconds one frees up. Shared by every connection (and every relay on this store)
/// through a compare-and-swap. A store that fails lets the message through: Exchange
/// still enforces its own limit, and refusing every message would be worse.
pub fn reserve_slot(s: &impl Storage, now: u64) -> Result<(), u64> {
    for _ in 0..ATTEMPTS {
        let Ok(raw) = s.get(RATE_KEY) else {
            return Ok(());
        };
        let mut recent = match raw
            .as_deref()
            .map(|b| storage::decode::<RecentSubmissions>(RATE_KEY, b))
        {
            None | Some(Err(StoreError::Corrupt(_))) => RecentSubmissions::default(),
            Some(Ok(recent)) => recent,
            Some(Err(_)) => return Ok(()),
        };
        recent.at.retain(|&at| at <= now && now - at < 60);
        if recent.at.len() >= MESSAGES_PER_MINUTE {
            let oldest = recent.at.iter().min().copied().unwrap_or(now);
            return Err((oldest + 60).saturating_sub(now).max(1));
        }
        recent.at.push(now);
        match s.commit_if(
            vec![storage::guard(RATE_KEY, raw.as_deref())],
            vec![(RATE_KEY.to_owned(), Some(storage::encode(&recent)))],
        ) {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict) => continue,
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn mailboxes_are_read_from_display_forms() {
        assert_eq!(
            mailboxes(" Scanner <scan@contoso.com>"),
            ["scan@contoso.com"]
        );
        assert_eq!(mailboxes(" scan@contoso.com"), ["scan@contoso.com"]);
        assert_eq!(
            mailboxes(" \"Doe, <x@evil.example>\" <scan@contoso.com>"),
            ["scan@contoso.com"]
        );
        assert_eq!(mailboxes(" a@b.example (c@d.example)"), ["a@b.example"]);
        assert_eq!(mailboxes(" a@b.example, c@d.example").len(), 2);
    }

    #[test]
    fn headers_that_smuggle_are_refused() {
        for bad in [
            &b"From: a@b\r\nSubject: x\rBcc: c@d\r\n"[..],
            b"From: a@b\r\n\0Bcc: c@d\r\n",
            b" folded first\r\nFrom: a@b\r\n",
            b"From: a@b\r\nnot a field\r\n",
            b"From: a@b\r\nBad Name: x\r\n",
        ] {
            assert!(
                matches!(Header::parse(bad), Err(HeaderProblem::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let folded =
            Header::parse(b"From: Scanner\r\n <scan@contoso.com>\r\nMessage-ID: <1@x>\r\n")
                .unwrap();
        assert_eq!(folded.message_id().as_deref(), Some("<1@x>"));
    }

    fn senders(addresses: &[&str]) -> Senders {
        Senders {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn from_and_sender_must_be_the_account_or_an_alias() {
        let ok = senders(&["scan@contoso.com"]);
        let header = |text: &'static str| Header::parse(text.as_bytes()).unwrap();
        assert_eq!(
            header("From: <SCAN@contoso.com>\r\n").check_senders(&ok),
            Ok(())
        );
        assert_eq!(
            header("From: ceo@contoso.com\r\n").check_senders(&ok),
            Err(HeaderProblem::NotASender("ceo@contoso.com".into()))
        );
        assert!(matches!(
            header("Subject: x\r\n").check_senders(&ok),
            Err(HeaderProblem::From(_))
        ));
        assert!(matches!(
            header("From: scan@contoso.com\r\nFrom: scan@contoso.com\r\n").check_senders(&ok),
            Err(HeaderProblem::From(_))
        ));
        assert!(matches!(
            header("From: scan@contoso.com, ceo@contoso.com\r\n").check_senders(&ok),
            Err(HeaderProblem::From(_))
        ));
        assert_eq!(
            header("From: scan@contoso.com\r\nSender: ceo@contoso.com\r\n").check_senders(&ok),
            Err(HeaderProblem::NotASender("ceo@contoso.com".into()))
        );
        assert!(
            !ok.allows(""),
            "the null sender is nobody the relay sends as"
        );
    }

    #[test]
    fn the_thirty_first_message_of_a_minute_waits() {
        let s = MemoryStorage::default();
        let now = 1_800_000_000;
        for i in 0..MESSAGES_PER_MINUTE as u64 {
            assert_eq!(reserve_slot(&s, now + i), Ok(()));
        }
        assert_eq!(
            reserve_slot(&s, now + 30),
            Err(30),
            "the first slot frees at now + 60"
        );
        assert_eq!(
            reserve_slot(&s, now + 60),
            Ok(()),
            "a minute later one is free"
        );
    }
}
