//! A terminal chat room on a sixcast channel: every line you type goes to everyone who runs this
//! example with the same room name on a network that carries multicast.
//!
//! ```sh
//! cargo run -p sixcast --example chat -- lobby
//! ```

use std::io::BufRead;

fn main() -> sixcast::Result<()> {
    let room = std::env::args().nth(1).unwrap_or_else(|| "lobby".into());
    let context = sixcast::Context::new(sixcast::Config::default())?;
    let channel = context.channel(&room)?;
    channel.join()?;
    eprintln!(
        "joined {room:?} ({}); type lines to send, Ctrl-D to leave",
        channel.group()
    );

    let incoming = channel.clone();
    std::thread::spawn(move || {
        while let Ok(message) = incoming.recv() {
            println!(
                "[{}] {}",
                message.source.ip(),
                String::from_utf8_lossy(&message.payload)
            );
        }
    });
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|err| sixcast::Error::io("reading standard input", err))?;
        channel.send(line.as_bytes())?;
        // Interactive messages should not wait for the packing timer.
        channel.flush()?;
    }
    context.close();
    Ok(())
}
