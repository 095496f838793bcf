//! `enact http-token NAME --email EMAIL [--role ROLE]` (SPEC §10): a new random bearer token
//! (256 bits, base64url without padding) on the first line of stdout, then the
//! `[[http.clients]]` block holding its SHA-256. The token is shown once and stored nowhere.

use sha2::{Digest, Sha256};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

pub fn run(name: &str, email: &str, role: &str) -> u8 {
    let plain = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !plain {
        eprintln!("error: the client name must match [A-Za-z0-9_.-]{{1,64}}, got {name:?}");
        return EXIT_USAGE;
    }
    if email.trim().is_empty() || role.trim().is_empty() {
        eprintln!("error: --email and --role must not be empty");
        return EXIT_USAGE;
    }
    let mut bytes = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut bytes) {
        eprintln!("error: no randomness for a token: {e}");
        return EXIT_FAILED;
    }
    let token = base64url(&bytes);
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    println!("{token}");
    println!();
    println!(
        "# Give the token above to the client once (it is stored nowhere); add these lines to enact.toml:"
    );
    println!("[[http.clients]]");
    println!("name = {}", quote(name));
    println!("token_sha256 = \"{digest}\"");
    println!("email = {}", quote(email));
    println!("role = {}", quote(role));
    EXIT_OK
}

/// RFC 4648 §5 base64url, without padding.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            let index = (n >> (18 - 6 * i)) & 63;
            out.push(char::from(ALPHABET[index as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64url;

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }
}
