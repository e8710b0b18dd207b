//! `rill request`: send one request and print the reply (`--raw`: the payload only).

use std::time::Instant;

use anyhow::bail;
use async_nats::RequestErrorKind;

use crate::connect::ConnOpts;
use crate::output;
use crate::parse;

/// Arguments of `rill request` (the global --timeout bounds the wait).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Subject to send the request to
    subject: String,
    /// Request body; read from stdin when omitted
    body: Option<String>,
    /// Header as key:value (repeatable)
    #[arg(short = 'H', long = "header", value_parser = parse::header)]
    headers: Vec<(String, String)>,
    /// Print only the reply payload
    #[arg(long)]
    raw: bool,
}

/// Runs `rill request`.
pub(crate) async fn run(conn: &ConnOpts, args: Args) -> anyhow::Result<()> {
    let body = super::body_or_stdin(args.body)?;
    let client = conn.connect().await?;
    let mut request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(conn.timeout));
    if let Some(h) = super::header_map(&args.headers) {
        request = request.headers(h);
    }
    let started = Instant::now();
    let reply = match client.send_request(args.subject.clone(), request).await {
        Ok(reply) => reply,
        Err(e) => match e.kind() {
            RequestErrorKind::NoResponders => bail!("no responders on \"{}\"", args.subject),
            RequestErrorKind::TimedOut => {
                bail!("no reply on \"{}\" within {:?}", args.subject, conn.timeout)
            }
            _ => bail!("request to \"{}\" failed: {e}", args.subject),
        },
    };
    if args.raw {
        output::raw_line(&reply.payload)?;
        return Ok(());
    }
    println!("Received with rtt {:?}", started.elapsed());
    if let Some(h) = &reply.headers {
        output::headers(h);
    }
    println!("\n{}\n", String::from_utf8_lossy(&reply.payload));
    Ok(())
}
