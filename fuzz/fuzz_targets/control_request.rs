//! Requests on `cmd.<host>`: `CommandRequest::decode` (JSON or MessagePack,
//! told apart by the first byte) and the publisher's control handler that
//! reads them.
//!
//! Beyond "never panics":
//! - a request that decodes re-encodes in both encodings, each detected as
//!   itself and decoding to the same request;
//! - a signal the publisher resolves resolves again by its name and by its
//!   number to the same signal;
//! - the handler answers in the request's encoding with a reply that reads
//!   back, and audits it with texts cut to what the commands table holds;
//! - a `who` is answered ok with this publisher's boot and host name, and
//!   leaves no audit record.
//!
//! The handler is only run on requests that cannot reach kill(2): ones that
//! do not decode, are not `kill`, name no known signal, or carry no pid or a
//! pid that cannot be a process (<= 0, or above PID_MAX_LIMIT, 2^22, which
//! no Linux pid exceeds). A fuzzer must never signal the machine's
//! processes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_publisher::control::handler::{Handler, Identity, MAX_ACTION, MAX_ERROR, MAX_TEXT};
use vigia_publisher::control::policy::Policy;
use vigia_publisher::control::signal;
use vigia_schema::command::{ACTION_KILL, ACTION_WHO};
use vigia_schema::{CommandReply, CommandRequest, Encoding, Outcome, SignalSpec};

/// Linux's PID_MAX_LIMIT on 64-bit: /proc/sys/kernel/pid_max is at most this.
const PID_MAX_LIMIT: i64 = 1 << 22;

fn cannot_reach_kill(request: Option<&CommandRequest>) -> bool {
    let Some(request) = request else {
        return true;
    };
    request.action != ACTION_KILL
        || signal::resolve(request.signal.as_ref()).is_err()
        || request
            .pid
            .is_none_or(|pid| pid <= 0 || pid > PID_MAX_LIMIT)
}

fuzz_target!(|data: &[u8]| {
    let encoding = Encoding::detect(data);
    let request = CommandRequest::decode(data).ok();

    if let Some(request) = &request {
        for other in [Encoding::Json, Encoding::MessagePack] {
            let bytes = request.encode(other);
            assert_eq!(Encoding::detect(&bytes), other);
            match CommandRequest::decode(&bytes) {
                Ok(back) => assert_eq!(&back, request),
                Err(e) => panic!("{other:?} of {request:?} does not decode: {e}"),
            }
        }
        if let Ok(resolved) = signal::resolve(request.signal.as_ref()) {
            let by_name = SignalSpec::Name(resolved.name.to_owned());
            let by_number = SignalSpec::Number(resolved.signal.as_raw().into());
            assert_eq!(signal::resolve(Some(&by_name)), Ok(resolved));
            assert_eq!(signal::resolve(Some(&by_number)), Ok(resolved));
        }
    }

    if !cannot_reach_kill(request.as_ref()) {
        return;
    }
    let identity = Identity {
        boot: "fuzzboot".into(),
        hostname: "fuzz-host".into(),
    };
    let handled = Handler::new(Policy::new(true, Vec::new()), 10, identity).handle(data, None);
    assert_eq!(handled.encoding, encoding);
    if request.as_ref().is_some_and(|r| r.action == ACTION_WHO) {
        assert!(handled.reply.ok, "a who was refused: {:?}", handled.reply);
        assert_eq!(handled.reply.boot.as_deref(), Some("fuzzboot"));
        assert_eq!(handled.reply.hostname.as_deref(), Some("fuzz-host"));
        assert!(handled.event.is_none(), "a who was audited");
        return;
    }
    assert!(
        !handled.reply.ok,
        "a request that cannot kill was answered ok"
    );
    let back = CommandReply::decode(&handled.reply.encode(handled.encoding))
        .expect("the reply does not read back");
    assert_eq!(back, handled.reply);

    let event = handled.event.expect("the first request is always audited");
    assert_ne!(event.outcome, Outcome::Ok);
    assert!(event.action.chars().count() <= MAX_ACTION);
    assert!(event
        .requested_by
        .as_ref()
        .is_none_or(|r| r.chars().count() <= MAX_TEXT));
    assert!(event
        .error
        .as_ref()
        .is_some_and(|e| e.chars().count() <= MAX_ERROR));
    match &request {
        None => {
            assert_eq!(event.outcome, Outcome::Invalid);
            assert!(event.action.is_empty() && event.pid.is_none());
        }
        Some(request) => {
            assert!(request.action.starts_with(&event.action));
            assert_eq!(event.pid, request.pid);
        }
    }
});
