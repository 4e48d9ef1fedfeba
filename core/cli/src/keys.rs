//! `sixcast keygen` and the key options of `listen` and `send`.

use std::{
    fs::OpenOptions,
    io::Write,
    net::Ipv6Addr,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

use clap::Args;
use sixcast::{
    Channel, Error, ErrorKind, SenderLoss, Stats,
    crypto::{ChannelKey, PublicKey, SigningKey, Token},
};

/// Key options of `listen`.
#[derive(Args)]
pub(crate) struct ListenKeys {
    /// Channel key file (from `sixcast keygen`): deliver only messages sealed with it.
    /// Repeatable, to accept an old and a new key during a rotation.
    #[arg(long = "key", value_name = "FILE")]
    keys: Vec<PathBuf>,
    /// Public key file (FILE.pub from `sixcast keygen --signing`): deliver only messages signed
    /// by a trusted key. Repeatable.
    #[arg(long = "trust", value_name = "PUBKEY_FILE")]
    trusted: Vec<PathBuf>,
    /// Public key file of a token issuer: also deliver messages signed by any key that presents
    /// an unexpired token of this issuer (`sixcast token`). Repeatable.
    #[arg(long = "trust-issuer", value_name = "PUBKEY_FILE")]
    issuers: Vec<PathBuf>,
}

/// Key options of `send`.
#[derive(Args)]
pub(crate) struct SendKeys {
    /// Channel key file (from `sixcast keygen`): seal what is sent with it.
    #[arg(long = "key", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Signing key file (from `sixcast keygen --signing`): sign what is sent with it.
    #[arg(long = "sign", value_name = "FILE")]
    sign: Option<PathBuf>,
    /// Token file (from `sixcast token`) for the `--sign` key, presented with every message.
    #[arg(long = "token", value_name = "FILE", requires = "sign")]
    token: Option<PathBuf>,
}

impl ListenKeys {
    pub(crate) fn apply(&self, channel: &Channel) -> sixcast::Result<()> {
        for path in &self.keys {
            channel.add_key(&ChannelKey::from_file_text(&read(path)?).map_err(|e| at(path, e))?)?;
        }
        for path in &self.trusted {
            channel.trust(PublicKey::from_file_text(&read(path)?).map_err(|e| at(path, e))?)?;
        }
        for path in &self.issuers {
            let issuer = PublicKey::from_file_text(&read(path)?).map_err(|e| at(path, e))?;
            channel.trust_issuer(issuer)?;
        }
        Ok(())
    }
}

impl SendKeys {
    pub(crate) fn apply(&self, channel: &Channel) -> sixcast::Result<()> {
        if let Some(path) = &self.key {
            channel.set_key(&ChannelKey::from_file_text(&read(path)?).map_err(|e| at(path, e))?)?;
        }
        if let Some(path) = &self.sign {
            channel
                .sign_with(SigningKey::from_file_text(&read(path)?).map_err(|e| at(path, e))?)?;
        }
        if let Some(path) = &self.token {
            let token = Token::from_file_text(&read(path)?).map_err(|e| at(path, e))?;
            channel.present(token).map_err(|e| at(path, e))?;
        }
        Ok(())
    }
}

/// The public keys in `paths` (`--relay-key`).
pub(crate) fn public_keys(paths: &[PathBuf]) -> sixcast::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|path| PublicKey::from_file_text(&read(path)?).map_err(|e| at(path, e)))
        .collect()
}

/// The signing key in `path` (`relay --identity`).
pub(crate) fn signing_key(path: &Path) -> sixcast::Result<SigningKey> {
    SigningKey::from_file_text(&read(path)?).map_err(|e| at(path, e))
}

/// The token in `path` (`relay --voucher`).
pub(crate) fn token(path: &Path) -> sixcast::Result<Token> {
    Token::from_file_text(&read(path)?).map_err(|e| at(path, e))
}

/// The final line of `listen --json`: what the channel dropped, by reason, and what each
/// sender lost.
pub(crate) fn drops_json(stats: &Stats, senders: &[SenderLoss]) -> String {
    let mut drops = serde_json::Map::new();
    drops.insert("malformed".into(), stats.malformed.into());
    for (reason, count) in stats.drops.iter() {
        drops.insert(reason.name().into(), count.into());
    }
    serde_json::json!({
        "drops": drops,
        "duplicates": stats.duplicates,
        "datagrams_received": stats.datagrams_received,
        "messages_received": stats.messages_received,
        "lost": stats.lost,
        "queue_overflow": stats.queue_overflow,
        // Reliable senders' repair, as this receiver saw it.
        "nacks_sent": stats.nacks_sent,
        "repairs_received": stats.repairs_received,
        "packets_recovered": stats.packets_recovered,
        "packets_lost": stats.packets_lost,
        "senders": senders
            .iter()
            .map(|sender| serde_json::json!({
                "sender": sender.sender.to_string(),
                "lost": sender.lost,
                "highest_seq": sender.highest_seq,
            }))
            .collect::<Vec<_>>(),
    })
    .to_string()
}

/// Writes a new channel key to `out` (mode 0600), or with `signing` a signing key to `out`
/// (0600) and its public key to `out.pub` (0644). Never overwrites a file.
pub(crate) fn keygen(out: &Path, signing: bool) -> sixcast::Result<ExitCode> {
    if signing {
        let key = SigningKey::generate()?;
        let public_path = public_path(out);
        write_new(out, key.to_file_text().as_bytes(), 0o600)?;
        write_new(
            &public_path,
            key.public_key().to_file_text().as_bytes(),
            0o644,
        )?;
        println!(
            "signing key {} written to {} (secret) and {} (public: give it to receivers)",
            key.public_key().fingerprint(),
            out.display(),
            public_path.display()
        );
    } else {
        let key = ChannelKey::generate()?;
        write_new(out, key.to_file_text().as_bytes(), 0o600)?;
        println!("channel key {} written to {}", key.id(), out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to `out` a token of the issuer whose signing key is in `issuer`, letting the public
/// key in `subject` send on the channel of canonical group `group` for `valid_seconds`.
pub(crate) fn issue_token(
    issuer: &Path,
    subject: &Path,
    group: Ipv6Addr,
    valid_seconds: u64,
    out: &Path,
) -> sixcast::Result<ExitCode> {
    let issuer_key = SigningKey::from_file_text(&read(issuer)?).map_err(|e| at(issuer, e))?;
    let subject_key = PublicKey::from_file_text(&read(subject)?).map_err(|e| at(subject, e))?;
    let not_after = SystemTime::now() + Duration::from_secs(valid_seconds);
    let token = Token::issue(&issuer_key, subject_key, group, not_after);
    write_new(out, token.to_file_text().as_bytes(), 0o644)?;
    let until = not_after
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    println!(
        "token for key {} on {group}, valid until {until} (Unix time), written to {}",
        subject_key.fingerprint(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn public_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> sixcast::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|err| {
            Error::io(
                format!(
                    "creating {} (an existing key is never overwritten)",
                    path.display()
                ),
                err,
            )
        })?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io(format!("writing {}", path.display()), err))
}

/// A key file's text, bounded in size: a key file is one short line.
fn read(path: &Path) -> sixcast::Result<String> {
    let bytes =
        std::fs::read(path).map_err(|err| Error::io(format!("reading {}", path.display()), err))?;
    if bytes.len() > 4096 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("{} is too large to be a sixcast key file", path.display()),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("{} is not a sixcast key file (not text)", path.display()),
        )
    })
}

fn at(path: &Path, err: Error) -> Error {
    Error::new(err.kind(), format!("{}: {}", path.display(), err.message()))
}
