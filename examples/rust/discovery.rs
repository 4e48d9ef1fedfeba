//! Service announcement and discovery on the `services` channel: `announce` repeats a service's
//! name, address and port; `discover` lists the services it has heard of and drops one when its
//! announcements stop.
//!
//! ```sh
//! cargo run -p sixcast --example discovery -- announce web 2001:db8::10 8080   # per service
//! cargo run -p sixcast --example discovery -- discover                         # anywhere
//! ```
//!
//! An announcement is one UTF-8 line, `NAME ADDRESS PORT TTL_MS`: the service stays listed for
//! TTL_MS milliseconds after its latest announcement (three announcement intervals).

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use sixcast::ErrorKind;

const CHANNEL: &str = "services";
/// Announcements a service may miss (multicast is best-effort) before discoverers drop it.
const MISSED_ANNOUNCEMENTS: u32 = 3;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const USAGE: &str =
    "usage: discovery announce NAME ADDRESS PORT [--interval SECS] | discovery discover";

/// What a service instance says about itself.
struct Announcement {
    name: String,
    endpoint: SocketAddr,
    ttl: Duration,
}

impl Announcement {
    fn parse(payload: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(payload).ok()?;
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        let [name, address, port, ttl_ms] = fields[..] else {
            return None;
        };
        Some(Self {
            name: name.to_owned(),
            endpoint: SocketAddr::new(address.parse().ok()?, port.parse().ok()?),
            ttl: Duration::from_millis(ttl_ms.parse().ok()?),
        })
    }
}

impl fmt::Display for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (address, port) = (self.endpoint.ip(), self.endpoint.port());
        write!(f, "{} {address} {port} {}", self.name, self.ttl.as_millis())
    }
}

fn announce(announcement: &Announcement, interval: Duration) -> sixcast::Result<()> {
    let context = sixcast::Context::new(sixcast::Config::default())?;
    let channel = context.channel(CHANNEL)?;
    let line = announcement.to_string();
    eprintln!(
        "announcing {line:?} on {CHANNEL} ({}) every {interval:?}",
        channel.group()
    );
    loop {
        channel.send(line.as_bytes())?;
        // One announcement per interval: nothing to pack it with, so it goes at once.
        channel.flush()?;
        std::thread::sleep(interval);
    }
}

/// Service instances heard of, by name and endpoint, with when each expires.
type Services = BTreeMap<(String, SocketAddr), Instant>;

fn print_services(services: &Services) {
    let listed: Vec<String> = services
        .keys()
        .map(|(name, endpoint)| format!("{name} at {endpoint}"))
        .collect();
    println!("services ({}): {}", listed.len(), listed.join(", "));
}

fn discover() -> sixcast::Result<()> {
    let context = sixcast::Context::new(sixcast::Config::default())?;
    let channel = context.channel(CHANNEL)?;
    channel.join()?;
    eprintln!("listening on {CHANNEL} ({})", channel.group());
    let mut services = Services::new();
    loop {
        // Wake up for the next announcement or the next expiry, whichever comes first.
        let next_expiry = services.values().min().copied();
        let wait = next_expiry.map_or(Duration::from_secs(60), |at| {
            at.saturating_duration_since(Instant::now())
        });
        match channel.recv_timeout(wait) {
            Ok(message) => match Announcement::parse(&message.payload) {
                Some(heard) => {
                    let key = (heard.name.clone(), heard.endpoint);
                    if services.insert(key, Instant::now() + heard.ttl).is_none() {
                        println!("added {} at {}", heard.name, heard.endpoint);
                        print_services(&services);
                    }
                }
                None => eprintln!("ignored a malformed announcement from {}", message.source),
            },
            Err(err) if err.kind() == ErrorKind::Timeout => {}
            Err(err) => return Err(err),
        }
        let now = Instant::now();
        let before = services.len();
        services.retain(|(name, endpoint), expires| {
            let expired = *expires <= now;
            if expired {
                println!("removed {name} at {endpoint}: its announcements stopped");
            }
            !expired
        });
        if services.len() != before {
            print_services(&services);
        }
    }
}

/// Parses `NAME ADDRESS PORT [--interval SECS]`.
fn announce_arguments(args: &[String]) -> Option<(Announcement, Duration)> {
    let (name, address, port, interval) = match args {
        [name, address, port] => (name, address, port, DEFAULT_INTERVAL),
        [name, address, port, flag, secs] if flag == "--interval" => {
            let interval = Duration::try_from_secs_f64(secs.parse().ok()?).ok()?;
            (name, address, port, interval)
        }
        _ => return None,
    };
    // The name is one field of a space-separated line.
    if name.is_empty() || name.contains(char::is_whitespace) || interval.is_zero() {
        return None;
    }
    let announcement = Announcement {
        name: name.clone(),
        endpoint: SocketAddr::new(address.parse::<IpAddr>().ok()?, port.parse().ok()?),
        ttl: interval * MISSED_ANNOUNCEMENTS,
    };
    Some((announcement, interval))
}

fn main() -> sixcast::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((command, rest)) if command == "announce" => match announce_arguments(rest) {
            Some((announcement, interval)) => announce(&announcement, interval),
            None => usage(),
        },
        Some((command, [])) if command == "discover" => discover(),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2);
}
