//! Hostile test plugin `socket-user`: tries to open a TCP connection to the
//! address in its config (`{"addr": "127.0.0.1:9"}`) and send the event's
//! data. The gateway links WASI sockets granting nothing, so the connect
//! fails with WASI's access-denied error, which this plugin returns as a
//! `failed` error naming it; if the connect ever succeeded it would deliver
//! the event with metadata `connected` = `yes`.

use std::io::Write;
use std::net::TcpStream;

use gateway_plugin::{Error, Event, Plugin, Target, Verdict};
use serde::Deserialize;

/// The plugin's config.
#[derive(Deserialize)]
struct Config {
    /// Where to connect.
    addr: String,
}

/// The plugin: connects, or says why it could not.
pub struct SocketUser;

impl Plugin for SocketUser {
    fn handle(mut event: Event, target: Target) -> Result<Verdict, Error> {
        let config: Config = target.parse_config()?;
        let mut stream = TcpStream::connect(&config.addr)
            .map_err(|e| Error::failed(format!("connect to {}: {e}", config.addr)))?;
        let data = event.data.to_string();
        stream
            .write_all(data.as_bytes())
            .map_err(|e| Error::failed(format!("write: {e}")))?;
        event
            .metadata
            .push(("connected".to_owned(), "yes".to_owned()));
        Ok(Verdict::deliver(event))
    }
}

gateway_plugin::export!(SocketUser);
