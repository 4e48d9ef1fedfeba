//! Key and token file parsers must never panic, and a key they accept must write back to the same text
//! (modulo the case of hex digits and a CRLF line end).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixcast::crypto::{ChannelKey, PublicKey, SigningKey, Token};

fn canonical(text: &str) -> String {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    format!("{}\n", line.to_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = ChannelKey::from_file_text(text) {
        assert_eq!(key.to_file_text().as_str(), canonical(text));
    }
    if let Ok(key) = SigningKey::from_file_text(text) {
        assert_eq!(key.to_file_text().as_str(), canonical(text));
    }
    if let Ok(key) = PublicKey::from_file_text(text) {
        assert_eq!(key.to_file_text(), canonical(text));
    }
    if let Ok(token) = Token::from_file_text(text) {
        assert_eq!(token.to_file_text(), canonical(text));
    }
});
