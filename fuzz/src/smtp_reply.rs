//! The SMTP reply parser (`smtp::ReplyParser`), the enhanced status codes and the EHLO
//! keywords (`smtp::EhloExtensions`): bytes straight from a server.
//!
//! Invariants: the replies do not depend on how the bytes were split into reads (all at
//! once, byte by byte, or at the input's first byte); every reply has a code 200–559, at
//! most `MAX_REPLY_LINES` lines, and no control character in its text; an enhanced code
//! prints back to itself; EHLO mechanisms are upper-case single words without repeats.

use mfp_smtp_oauth::smtp::{
    EhloExtensions, EnhancedStatus, MAX_LINE_LEN, MAX_REPLY_LINES, Reply, ReplyError, ReplyParser,
};

use super::support::has_control;

/// What a run of the parser gave: replies up to the first error.
#[derive(Debug, PartialEq)]
struct Parsed {
    replies: Vec<Reply>,
    error: Option<ReplyError>,
}

fn parse_in_reads<'a>(reads: impl IntoIterator<Item = &'a [u8]>) -> Parsed {
    let mut parser = ReplyParser::default();
    let mut parsed = Parsed {
        replies: Vec::new(),
        error: None,
    };
    for mut read in reads {
        while !read.is_empty() {
            let (consumed, result) = parser.parse(read);
            assert!(consumed <= read.len(), "consumed more than it was given");
            read = &read[consumed..];
            match result {
                Ok(Some(reply)) => parsed.replies.push(reply),
                Ok(None) => assert!(read.is_empty(), "stopped mid-read without a reply"),
                Err(err) => {
                    // The parser is spent after an error: the stream is out of step.
                    parsed.error = Some(err);
                    return parsed;
                }
            }
        }
    }
    parsed
}

pub fn run(data: &[u8]) {
    let whole = parse_in_reads([data]);
    let bytewise = parse_in_reads(data.chunks(1));
    assert_eq!(whole, bytewise, "replies depend on how the bytes were read");
    let split = usize::from(data.first().copied().unwrap_or(1)).max(1);
    assert_eq!(
        whole,
        parse_in_reads(data.chunks(split)),
        "replies depend on how the bytes were read"
    );

    for reply in &whole.replies {
        check_reply(reply);
        check_extensions(reply);
    }

    // An enhanced status code on its own, e.g. `5.7.139`.
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(status) = EnhancedStatus::parse(text)
    {
        assert!(matches!(status.class, 2 | 4 | 5));
        assert!(status.subject <= 999 && status.detail <= 999);
        assert_eq!(EnhancedStatus::parse(&status.to_string()), Some(status));
    }
}

fn check_reply(reply: &Reply) {
    assert!((200..=559).contains(&reply.code), "code {}", reply.code);
    assert!(!reply.lines.is_empty() && reply.lines.len() <= MAX_REPLY_LINES);
    for line in &reply.lines {
        assert!(!has_control(line), "control character in a reply line");
        // Each invalid byte may become U+FFFD (3 bytes).
        assert!(line.len() <= 3 * MAX_LINE_LEN);
    }
    let shown = reply.to_string();
    assert!(!has_control(&shown), "control character in a shown reply");
    assert!(shown.starts_with(&reply.code.to_string()));
    if let Some(enhanced) = reply.enhanced {
        assert_eq!(u16::from(enhanced.class), reply.code / 100);
        assert_eq!(EnhancedStatus::parse(&enhanced.to_string()), Some(enhanced));
    }
    let class = reply.code / 100;
    assert_eq!(reply.is_positive(), class == 2);
    assert_eq!(reply.is_intermediate(), class == 3);
    assert_eq!(reply.is_transient(), class == 4);
}

fn check_extensions(reply: &Reply) {
    let caps = EhloExtensions::from_ehlo(reply);
    for (i, mechanism) in caps.auth.iter().enumerate() {
        assert!(!mechanism.is_empty());
        assert_eq!(*mechanism, mechanism.to_ascii_uppercase());
        assert!(
            !mechanism.contains([' ', '=']),
            "AUTH mechanism {mechanism:?}"
        );
        assert!(
            !caps.auth[..i].contains(mechanism),
            "AUTH mechanism repeated"
        );
        assert!(caps.supports_auth(&mechanism.to_ascii_lowercase()));
    }
    match caps.size_limit() {
        Some(limit) => assert!(limit > 0 && caps.size == Some(limit)),
        None => assert!(matches!(caps.size, None | Some(0))),
    }
    // The first line is the greeting, never a keyword.
    if reply.lines.len() == 1 {
        assert_eq!(caps, EhloExtensions::default());
    }
}
