//! Frames, forwarded messages and the receiving loop.

use super::inbound::{recv_loop, Seen};
use super::*;

#[test]
fn frames_round_trip_and_split_anywhere() {
    let f = PeerFrame {
        from: 1,
        to: 2,
        raft: Bytes::from_static(&[1, 2, 3]),
        hello: Some(Hello {
            node_id: 1,
            client_addr: "127.0.0.1:7001".into(),
            raft_addr: "127.0.0.1:17001".into(),
        }),
        applied: Some(Applied {
            index: 7,
            tracking: true,
            fence: false,
            safe: 0,
        }),
        clock: Some(ClockStamp {
            sent_us: 5,
            echo_us: 3,
            held_us: 1,
            mono_us: 5,
        }),
        group: 0,
    };
    let mut wire = Vec::new();
    encode_frame(&f, &mut wire);
    encode_frame(&f, &mut wire);
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut got = Vec::new();
        while let Some(x) = decode_frame(&mut buf).expect("valid") {
            got.push(x);
        }
        buf.extend_from_slice(&wire[cut..]);
        while let Some(x) = decode_frame(&mut buf).expect("valid") {
            got.push(x);
        }
        assert_eq!(got, vec![f.clone(), f.clone()]);
    }
}

#[test]
fn raft_frames_encoded_in_place_decode_to_the_same_message_without_copies() {
    let mut msg = Message::default();
    msg.set_msg_type(raft::prelude::MessageType::MsgAppend);
    msg.from = 1;
    msg.to = 2;
    msg.term = 7;
    msg.entries.push(raft::prelude::Entry {
        index: 9,
        data: Bytes::from(vec![b'x'; 1000]),
        ..Default::default()
    });
    let mut wire = Vec::new();
    let size = msg.compute_size() as usize;
    assert!(encode_raft_frame(1, &msg, size, &mut wire));
    // The same bytes as the frame built the plain way.
    let plain = PeerFrame {
        from: 1,
        to: 2,
        raft: msg.write_to_bytes().expect("encode").into(),
        hello: None,
        applied: None,
        clock: None,
        group: 0,
    };
    let mut expect = Vec::new();
    encode_frame(&plain, &mut expect);
    assert_eq!(wire, expect);

    let mut buf = BytesMut::from(&wire[..]);
    let frame = decode_frame(&mut buf).expect("valid").expect("whole");
    let got = Message::parse_from_carllerche_bytes(&frame.raft).expect("raft message");
    assert_eq!(got, msg);
    // The entry's data points into the frame, not at a copy of it.
    let data = got.entries[0].data.as_ptr_range();
    let raft = frame.raft.as_ptr_range();
    assert!(raft.start <= data.start && data.end <= raft.end);
}

fn raft_frame(from: u64, msg: &Message) -> Vec<u8> {
    let mut wire = Vec::new();
    let size = msg.compute_size() as usize;
    assert!(encode_raft_frame(from, msg, size, &mut wire));
    wire
}

fn message(t: raft::prelude::MessageType, from: u64, to: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(t);
    m.from = from;
    m.to = to;
    m
}

/// Feed `wire` to a receiving connection of node 2; what reached the raft thread,
/// and whether the connection was dropped.
fn receive(wire: Vec<u8>) -> (Vec<Message>, Result<(), String>) {
    let (tx, rx) = crossbeam::channel::unbounded();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let seen = Seen {
        inbound: tx,
        heard: Arc::new(Heard::default()),
        clocks: Arc::new(Clocks::default()),
    };
    let res = rt.block_on(recv_loop(&wire[..], 2, &seen));
    let msgs = rx
        .try_iter()
        .filter_map(|e| match e {
            Event::Raft(m) => Some(*m),
            _ => None,
        })
        .collect();
    (msgs, res)
}

#[test]
fn forwarded_proposals_and_reads_keep_the_connection() {
    use raft::prelude::MessageType::*;
    // Node 1 forwards what node 3 proposed and asked to read, then its own append.
    let mut wire = raft_frame(1, &message(MsgPropose, 3, 2));
    wire.extend(raft_frame(1, &message(MsgReadIndex, 3, 2)));
    wire.extend(raft_frame(1, &message(MsgAppendResponse, 1, 2)));
    let (got, res) = receive(wire);
    assert_eq!(res, Ok(()));
    let kinds: Vec<_> = got.iter().map(|m| (m.get_msg_type(), m.from)).collect();
    assert_eq!(
        kinds,
        vec![(MsgPropose, 3), (MsgReadIndex, 3), (MsgAppendResponse, 1)]
    );
    // Anything else that names another sender still drops the connection.
    for t in [
        MsgAppend,
        MsgHeartbeatResponse,
        MsgRequestVote,
        MsgAppendResponse,
    ] {
        let (got, res) = receive(raft_frame(1, &message(t, 3, 2)));
        assert!(got.is_empty() && res.is_err(), "{t:?}");
    }
}

#[test]
fn oversized_and_garbage_frames_are_errors() {
    let mut buf = BytesMut::from(&(u32::MAX).to_be_bytes()[..]);
    assert!(decode_frame(&mut buf).is_err());
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 0xff, 0xff, 0xff][..]);
    assert!(decode_frame(&mut buf).is_err());
}

#[test]
fn a_frame_for_another_raft_group_drops_the_connection() {
    let frame = PeerFrame {
        from: 1,
        to: 2,
        group: 7,
        ..PeerFrame::default()
    };
    let mut wire = Vec::new();
    encode_frame(&frame, &mut wire);
    let (_, res) = receive(wire);
    assert!(res.is_err_and(|e| e.contains("group 7")));
}
