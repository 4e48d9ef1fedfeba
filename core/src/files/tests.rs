//! The receiver fed frames directly, without a network: what it writes, refuses and counts.

use std::{
    fs,
    net::{Ipv6Addr, SocketAddrV6},
    sync::Arc,
    time::Instant,
};

use super::{
    frame::{self, Offer},
    *,
};
use crate::Path as ArrivalPath;

fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sixcast-files-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn message(payload: Vec<u8>) -> Message {
    Message {
        payload,
        source: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 6446, 0, 0),
        group: Ipv6Addr::UNSPECIFIED,
        interface: 1,
        interface_name: Arc::from("eth0"),
        sender: NodeId(0xfeed),
        seq: 0,
        relayed: false,
        path: ArrivalPath::Native,
    }
}

fn offer_of(content: &[u8], name: &str, passes: u32) -> Offer {
    Offer {
        object: 42,
        size: content.len() as u64,
        chunk: 100,
        pass: 1,
        passes,
        sha256: store::sha256(&mut &content[..]).unwrap(),
        name: name.into(),
    }
}

fn offer_message(offer: &Offer) -> Message {
    let mut bytes = Vec::new();
    frame::encode_offer(&mut bytes, offer);
    message(bytes)
}

fn data_message(object: u64, offset: u64, bytes: &[u8]) -> Message {
    let mut frame = Vec::new();
    frame::encode_data_header(&mut frame, object, offset);
    frame.extend_from_slice(bytes);
    message(frame)
}

fn done_message(object: u64, pass: u32, passes: u32) -> Message {
    let mut frame = Vec::new();
    frame::encode_done(&mut frame, object, pass, passes);
    message(frame)
}

fn feed(receiver: &mut FileReceiver, message: &Message) -> Result<Option<FileOutcome>> {
    receiver.handle(message, Instant::now(), &mut |_| {})
}

#[test]
fn chunks_in_any_order_make_the_named_file_and_repeats_are_counted() {
    let dir = folder("whole");
    let content: Vec<u8> = (0..250u32).map(|i| (i * 7) as u8).collect();
    let offer = offer_of(&content, "config.tar", 1);
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    // Heard before the offer: not followed.
    assert_eq!(
        feed(&mut receiver, &data_message(42, 0, &content[..100])).unwrap(),
        None
    );
    assert_eq!(feed(&mut receiver, &offer_message(&offer)).unwrap(), None);
    for offset in [200, 0, 0] {
        let end = (offset + 100).min(250);
        let chunk = &content[offset..end];
        assert_eq!(
            feed(&mut receiver, &data_message(42, offset as u64, chunk)).unwrap(),
            None
        );
    }
    let outcome = feed(&mut receiver, &data_message(42, 100, &content[100..200])).unwrap();
    let Some(FileOutcome::Complete(file)) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(file.path, dir.join("config.tar"));
    assert_eq!(file.sender, NodeId(0xfeed));
    assert_eq!(fs::read(&file.path).unwrap(), content);
    // A later pass of the finished file is not followed again.
    assert_eq!(feed(&mut receiver, &offer_message(&offer)).unwrap(), None);
    let stats = receiver.stats();
    assert_eq!(
        (stats.unfollowed, stats.chunks, stats.duplicate_chunks),
        (1, 3, 1)
    );
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "only the file is left"
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forged_frames_are_counted_and_write_nothing() {
    let dir = folder("forged");
    let content = vec![3u8; 250];
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    // A name that would leave the folder, in an otherwise valid offer.
    let mut escape = offer_message(&offer_of(&content, "x", 1)).payload;
    let at = escape.len() - 1;
    escape.truncate(at);
    escape.extend_from_slice(b"../../etc/passwd");
    let name_len = (escape.len() - 70) as u16;
    escape[68..70].copy_from_slice(&name_len.to_be_bytes());
    assert_eq!(feed(&mut receiver, &message(escape)).unwrap(), None);
    assert_eq!(
        feed(&mut receiver, &offer_message(&offer_of(&content, "ok", 1))).unwrap(),
        None
    );
    // Misplaced and mis-sized chunks, and a truncated frame.
    for bad in [
        data_message(42, 50, &content[..100]),
        data_message(42, 0, &content[..99]),
        data_message(42, 300, &content[..100]),
        message(data_message(42, 0, &[]).payload[..20].to_vec()),
    ] {
        assert_eq!(feed(&mut receiver, &bad).unwrap(), None);
    }
    assert_eq!(
        feed(&mut receiver, &message(b"restart nginx".to_vec())).unwrap(),
        None
    );
    let stats = receiver.stats();
    assert_eq!(
        (stats.malformed, stats.other_messages, stats.chunks),
        (5, 1, 0),
        "{stats:?}"
    );
    drop(receiver);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".ok.sixcast-part", ".ok.sixcast-state"]);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_that_does_not_match_its_digest_is_removed() {
    let dir = folder("digest");
    let content = vec![9u8; 150];
    let mut offer = offer_of(&content, "f", 1);
    offer.sha256[31] ^= 1;
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    feed(&mut receiver, &offer_message(&offer)).unwrap();
    feed(&mut receiver, &data_message(42, 0, &content[..100])).unwrap();
    let err = feed(&mut receiver, &data_message(42, 100, &content[100..])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Malformed);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{err}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_last_pass_ending_early_keeps_the_partial_and_a_later_sending_resumes_it() {
    let dir = folder("resume");
    let content: Vec<u8> = (0..250u32).map(|i| i as u8).collect();
    let offer = offer_of(&content, "late.bin", 1);
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    feed(&mut receiver, &offer_message(&offer)).unwrap();
    feed(&mut receiver, &data_message(42, 200, &content[200..])).unwrap();
    let outcome = feed(&mut receiver, &done_message(42, 1, 1)).unwrap();
    assert_eq!(
        outcome,
        Some(FileOutcome::Incomplete(PartialFile {
            name: "late.bin".into(),
            size: 250,
            missing: 200
        }))
    );
    drop(receiver);
    // The same file sent again, under another transfer id, to a new receiver.
    let mut again = offer.clone();
    again.object = 43;
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    feed(&mut receiver, &offer_message(&again)).unwrap();
    feed(&mut receiver, &data_message(43, 0, &content[..100])).unwrap();
    let outcome = feed(&mut receiver, &data_message(43, 100, &content[100..200])).unwrap();
    let Some(FileOutcome::Complete(file)) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(file.resumed, 50);
    assert_eq!(fs::read(&file.path).unwrap(), content);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn offers_beyond_the_limits_are_refused() {
    let dir = folder("limits");
    let options = ReceiveOptions {
        max_size: 200,
        max_transfers: 1,
    };
    let mut receiver = FileReceiver::new(&dir, options).unwrap();
    let big = offer_of(&[0; 250], "big", 1);
    feed(&mut receiver, &offer_message(&big)).unwrap();
    let mut first = offer_of(&[0; 150], "first", 1);
    first.object = 1;
    let mut second = offer_of(&[0; 150], "second", 1);
    second.object = 2;
    let mut same_name = offer_of(&[1; 150], "first", 1);
    same_name.object = 3;
    for offer in [&first, &second, &same_name] {
        feed(&mut receiver, &offer_message(offer)).unwrap();
    }
    assert_eq!(receiver.stats().refused, 3);
    assert!(FileReceiver::new(dir.join("missing"), ReceiveOptions::default()).is_err());
    drop(receiver);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_the_folder_holds_already_is_complete_at_its_offer() {
    let dir = folder("there");
    let content = vec![5u8; 250];
    fs::write(dir.join("same.bin"), &content).unwrap();
    let mut receiver = FileReceiver::new(&dir, ReceiveOptions::default()).unwrap();
    let outcome = feed(
        &mut receiver,
        &offer_message(&offer_of(&content, "same.bin", 1)),
    )
    .unwrap();
    let Some(FileOutcome::Complete(file)) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((file.size, file.resumed), (250, 250));
    // The same name with other bytes is received anew.
    let mut other = offer_of(&[6u8; 250], "same.bin", 1);
    other.object = 7;
    assert_eq!(feed(&mut receiver, &offer_message(&other)).unwrap(), None);
    assert!(dir.join(".same.bin.sixcast-part").exists());
    drop(receiver);
    fs::remove_dir_all(&dir).unwrap();
}
