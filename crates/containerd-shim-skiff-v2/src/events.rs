//! Task events back to containerd: `containerd.services.events.ttrpc.v1.Events/
//! Forward` on TTRPC_ADDRESS, one at a time from one thread, so they arrive in
//! the order the service queued them (create before start before exit).
//!
//! The event's Any carries the bare type name (`containerd.events.TaskExit`),
//! which is how containerd's typeurl registry knows its own events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_shim_protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::ttrpc::context;
use containerd_shim_protos::{Client, EventsClient};

pub struct Publisher {
    queue: Mutex<Option<Sender<(String, Any)>>>,
    /// Signalled when the forwarding thread has sent everything and ended.
    drained: Mutex<Receiver<()>>,
    /// Whether containerd took the last event tried (false while it is
    /// away: restarting, or gone).
    reachable: Arc<AtomicBool>,
}

/// How long a flush waits when containerd did not take the last event: it
/// is away, and what is queued would only time out.
const AWAY_FLUSH: Duration = Duration::from_millis(100);

/// Wraps an event in an Any named the way containerd registers it. The name
/// is spelled out rather than read from the message's descriptor, so the
/// shim never builds protobuf's reflection tables.
fn pack<M: Message>(name: &str, m: &M) -> Any {
    Any {
        type_url: format!("containerd.events.{name}"),
        value: m.write_to_bytes().unwrap_or_default(),
        ..Default::default()
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

/// The events the service publishes, with their topics.
pub enum Event {
    Create(TaskCreate),
    Start(TaskStart),
    Exit(TaskExit),
    Oom(TaskOOM),
    ExecAdded(TaskExecAdded),
    ExecStarted(TaskExecStarted),
    Paused(TaskPaused),
    Resumed(TaskResumed),
    Delete(TaskDelete),
}

impl Event {
    fn topic_and_any(&self) -> (&'static str, Any) {
        use containerd_shim_protos::topics::*;
        match self {
            Event::Create(e) => (TASK_CREATE_EVENT_TOPIC, pack("TaskCreate", e)),
            Event::Start(e) => (TASK_START_EVENT_TOPIC, pack("TaskStart", e)),
            Event::Exit(e) => (TASK_EXIT_EVENT_TOPIC, pack("TaskExit", e)),
            Event::Oom(e) => (TASK_OOM_EVENT_TOPIC, pack("TaskOOM", e)),
            Event::ExecAdded(e) => (TASK_EXEC_ADDED_EVENT_TOPIC, pack("TaskExecAdded", e)),
            Event::ExecStarted(e) => (TASK_EXEC_STARTED_EVENT_TOPIC, pack("TaskExecStarted", e)),
            Event::Paused(e) => (TASK_PAUSED_EVENT_TOPIC, pack("TaskPaused", e)),
            Event::Resumed(e) => (TASK_RESUMED_EVENT_TOPIC, pack("TaskResumed", e)),
            Event::Delete(e) => (TASK_DELETE_EVENT_TOPIC, pack("TaskDelete", e)),
        }
    }
}

impl Publisher {
    /// Starts the forwarding thread. Without TTRPC_ADDRESS (a shim started
    /// by hand) events are dropped.
    pub fn start(namespace: String, ttrpc_address: Option<String>) -> Publisher {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let reachable = Arc::new(AtomicBool::new(true));
        let seen = reachable.clone();
        std::thread::spawn(move || {
            forward_all(rx, namespace, ttrpc_address, &seen);
            let _ = done_tx.send(());
        });
        Publisher {
            queue: Mutex::new(Some(tx)),
            drained: Mutex::new(done_rx),
            reachable,
        }
    }

    /// Before the shim exits: lets the queued events reach containerd (the
    /// TaskDelete of the last task comes right before Shutdown), for at most
    /// `limit`.
    pub fn flush(&self, limit: Duration) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).take();
        let limit = match self.reachable.load(Ordering::Relaxed) {
            true => limit,
            false => limit.min(AWAY_FLUSH),
        };
        let _ = self
            .drained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(limit);
    }

    pub fn publish(&self, event: Event) {
        let (topic, any) = event.topic_and_any();
        if let Some(q) = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = q.send((topic.to_string(), any));
        }
    }
}

fn forward_all(
    rx: Receiver<(String, Any)>,
    namespace: String,
    address: Option<String>,
    reachable: &AtomicBool,
) {
    let mut client: Option<EventsClient> = None;
    for (topic, event) in rx {
        let Some(address) = &address else { continue };
        let req = ForwardRequest {
            envelope: MessageField::some(Envelope {
                timestamp: MessageField::some(timestamp(SystemTime::now())),
                namespace: namespace.clone(),
                topic,
                event: MessageField::some(event),
                ..Default::default()
            }),
            ..Default::default()
        };
        // containerd may be restarting: retry with backoff for about a minute,
        // reconnecting each time, before giving this event up.
        let mut delay = Duration::from_millis(20);
        for _ in 0..12 {
            if client.is_none() {
                let addr = if address.contains("://") {
                    address.clone()
                } else {
                    format!("unix://{address}")
                };
                client = Client::connect(&addr).ok().map(EventsClient::new);
            }
            let sent = client
                .as_ref()
                .map(|c| c.forward(context::with_timeout(5_000_000_000), &req));
            match sent {
                Some(Ok(_)) => {
                    reachable.store(true, Ordering::Relaxed);
                    break;
                }
                _ => {
                    reachable.store(false, Ordering::Relaxed);
                    client = None;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
