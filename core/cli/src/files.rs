//! `send-file` and `recv-file`: a file to every receiver of a channel at once, over a reliable
//! channel, with progress bars on a terminal (`sixcast::files`, `docs/files.md`).

use std::{
    io::IsTerminal,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sixcast::{
    Context, ErrorKind,
    files::{self, FileOutcome, FileReceiver, OutgoingFile, Progress, ReceiveOptions, SendOptions},
};

use crate::{EXIT_TIMEOUT, keys, node::Network};

/// `recv-file` ended with a file its sender finished before this receiver held all of it.
const EXIT_INCOMPLETE: u8 = 4;

#[derive(Args)]
pub(super) struct SendFile {
    /// The channel name.
    channel: String,
    /// The file to send.
    path: PathBuf,
    /// The name receivers give the file [default: the path's last component].
    #[arg(long)]
    name: Option<String>,
    /// Payload bits per second at most; default: as fast as the receivers keep up.
    #[arg(long, value_name = "BITS_PER_S")]
    rate: Option<u64>,
    /// Send the whole file this many times, so that receivers that join late complete it.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    keys: keys::SendKeys,
    #[command(flatten)]
    network: Network,
}

#[derive(Args)]
pub(super) struct RecvFile {
    /// The channel name.
    channel: String,
    /// The folder to put received files in (must exist).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Exit after this many files.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Give up after this many seconds (exit code 3); what arrived is kept and resumed by the
    /// next `recv-file` of the same file.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Refuse files larger than this many bytes.
    #[arg(long, value_name = "BYTES")]
    max_size: Option<u64>,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    keys: keys::ListenKeys,
    #[command(flatten)]
    network: Network,
}

pub(super) fn send_file(args: &SendFile) -> sixcast::Result<ExitCode> {
    let mut options = SendOptions::default();
    options.passes = args.passes;
    options.name.clone_from(&args.name);
    // Read and hashed before any socket is opened: a bad path fails without a network.
    let outgoing = OutgoingFile::open(&args.path, &options)?;
    let mut config = args.network.config()?;
    // A file is only useful whole: its chunks are repaired where they are lost.
    config.reliable = true;
    if let Some(bits) = args.rate {
        config.send_rate_bytes = (bits / 8).max(1);
    }
    let context = Context::new(config)?;
    let channel = context.channel(&args.channel)?;
    args.keys.apply(&channel)?;
    crate::await_path(&context)?;
    let started = Instant::now();
    let bar = progress_bar();
    let sent = outgoing.send(&channel, &mut |progress| show(&bar, progress))?;
    // Closing a reliable context waits for the receivers' last repairs.
    context.close();
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let megabits = (sent.size * u64::from(args.passes)) as f64 * 8.0 / seconds.max(1e-9) / 1e6;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "name": sent.name,
                "size": sent.size,
                "sha256": hex::encode(sent.sha256),
                "passes": args.passes,
                "chunk": sent.chunk,
                "seconds": seconds,
                "megabits_per_second": megabits,
            })
        );
    } else {
        println!(
            "sent {} ({} bytes, {} pass(es)) in {seconds:.2} s, {megabits:.1} Mbit/s, sha256 {}",
            sent.name,
            sent.size,
            args.passes,
            hex::encode(sent.sha256)
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn recv_file(args: &RecvFile) -> sixcast::Result<ExitCode> {
    let deadline = crate::deadline_after(args.timeout)?;
    let mut options = ReceiveOptions::default();
    if let Some(max_size) = args.max_size {
        options.max_size = max_size;
    }
    let mut receiver = FileReceiver::new(&args.out, options)?;
    let context = Context::new(args.network.config()?)?;
    let channel = context.channel(&args.channel)?;
    args.keys.apply(&channel)?;
    channel.join()?;
    // Scripts and tests wait for this line before they start sending.
    eprintln!(
        "sixcast: receiving files on {:?} into {}",
        args.channel,
        args.out.display()
    );
    let bar = progress_bar();
    let mut received = 0;
    while received < args.count {
        // No deadline: a wait too long for the clock, which the receiver takes as no limit.
        let wait = deadline.map_or(Duration::MAX, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        let started = Instant::now();
        let outcome = receiver.recv(&channel, wait, &mut |progress| show(&bar, progress));
        bar.finish_and_clear();
        match outcome {
            Ok(FileOutcome::Complete(file)) => {
                received += 1;
                report_file(args.json, &file, started.elapsed());
            }
            Ok(FileOutcome::Incomplete(partial)) => {
                eprintln!(
                    "sixcast: the sender of {} finished before {} of its {} bytes arrived here; \
                     what arrived is kept in {} and completed by a later sending of the file",
                    partial.name,
                    partial.missing,
                    partial.size,
                    args.out.display()
                );
                return Ok(ExitCode::from(EXIT_INCOMPLETE));
            }
            Err(err) if err.kind() == ErrorKind::Timeout => {
                eprintln!(
                    "sixcast: timed out after {received} of {} file(s); what arrived is kept and \
                     resumed by the next recv-file",
                    args.count
                );
                return Ok(ExitCode::from(EXIT_TIMEOUT));
            }
            Err(err) => return Err(err),
        }
    }
    let stats = receiver.stats();
    tracing::debug!(?stats, channel = ?channel.stats(), "received");
    Ok(ExitCode::SUCCESS)
}

fn report_file(json: bool, file: &files::ReceivedFile, took: Duration) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "name": file.name,
                "path": file.path.display().to_string(),
                "size": file.size,
                "sha256": hex::encode(file.sha256),
                "sender": file.sender.to_string(),
                "resumed": file.resumed,
                "seconds": took.as_secs_f64(),
            })
        );
    } else {
        println!(
            "received {} ({} bytes, sha256 {}) into {}",
            file.name,
            file.size,
            hex::encode(file.sha256),
            file.path.display()
        );
    }
}

/// A bar on standard error when it is a terminal; nothing otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn show(bar: &ProgressBar, progress: &Progress<'_>) {
    if bar.is_hidden() {
        return;
    }
    if bar.length() != Some(progress.size) {
        bar.set_length(progress.size);
    }
    if progress.passes > 1 {
        bar.set_message(format!(
            "{} (pass {}/{})",
            progress.name, progress.pass, progress.passes
        ));
    } else if bar.message().is_empty() {
        bar.set_message(progress.name.to_owned());
    }
    bar.set_position(progress.bytes);
}
