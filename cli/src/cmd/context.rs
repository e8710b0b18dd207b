//! `rill context`: save, list, select, show and remove named connection settings (stored by
//! [`crate::connect::ContextStore`]).

use serde_json::json;

use crate::connect::{ConnOpts, ContextStore, SavedContext};
use crate::output::{self, Table};

/// `rill context` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Save the connection flags given with this command (-s, --user, …) as a named context
    #[command(alias = "save", alias = "create")]
    Add {
        /// Context name
        name: String,
        /// Free text description
        #[arg(long, default_value = "")]
        description: String,
        /// Also make it the selected context
        #[arg(long)]
        select: bool,
    },
    /// List contexts (the selected one is marked with *)
    #[command(alias = "list")]
    Ls {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Make a context the default for every command
    Select {
        /// Context name
        name: String,
    },
    /// Show a context (default: the selected one); secrets are masked
    #[command(alias = "info")]
    Show {
        /// Context name
        name: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Delete a context
    #[command(alias = "delete", alias = "del")]
    Rm {
        /// Context name
        name: String,
        /// Accepted for nats CLI compatibility: rill never prompts
        #[arg(long, short = 'f')]
        force: bool,
    },
}

/// Runs a `rill context` subcommand (no server connection needed).
pub(crate) fn run(conn: &ConnOpts, cmd: Cmd) -> anyhow::Result<()> {
    let store = ContextStore::open()?;
    match cmd {
        Cmd::Add {
            name,
            description,
            select,
        } => {
            store.save(&name, &SavedContext::from_opts(conn, description))?;
            if select {
                store.select(&name)?;
            }
            println!(
                "Saved context {name}{}",
                if select { " (selected)" } else { "" }
            );
            Ok(())
        }
        Cmd::Ls { json } => ls(&store, json),
        Cmd::Select { name } => {
            store.select(&name)?;
            println!("Selected context {name}");
            Ok(())
        }
        Cmd::Show { name, json } => show(&store, name, json),
        Cmd::Rm { name, .. } => {
            store.remove(&name)?;
            println!("Deleted context {name}");
            Ok(())
        }
    }
}

fn ls(store: &ContextStore, json: bool) -> anyhow::Result<()> {
    let selected = store.selected();
    let names = store.names();
    if json {
        output::json(&json!({ "selected": selected, "contexts": names }));
        return Ok(());
    }
    if names.is_empty() {
        println!("No contexts defined");
        return Ok(());
    }
    let mut table = Table::new(&["Name", "Server", "Description"]);
    for name in &names {
        let ctx = store.load(name)?;
        let mark = if selected.as_deref() == Some(name.as_str()) {
            "*"
        } else {
            ""
        };
        table.row(vec![format!("{name}{mark}"), ctx.url, ctx.description]);
    }
    table.title("Known contexts").print();
    Ok(())
}

fn mask(secret: &mut Option<String>) {
    if secret.is_some() {
        *secret = Some("*********".to_string());
    }
}

fn show(store: &ContextStore, name: Option<String>, json: bool) -> anyhow::Result<()> {
    let Some(name) = name.or_else(|| store.selected()) else {
        anyhow::bail!("no context selected; name one (rill context show NAME)");
    };
    let mut ctx = store.load(&name)?;
    mask(&mut ctx.password);
    mask(&mut ctx.token);
    if json {
        output::json(&serde_json::to_value(&ctx)?);
        return Ok(());
    }
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    output::section(
        &format!("Context {name}"),
        &[
            ("Description", ctx.description.clone()),
            ("Server URLs", ctx.url.clone()),
            ("Username", ctx.user.clone().unwrap_or_default()),
            ("Password", ctx.password.clone().unwrap_or_default()),
            ("Token", ctx.token.clone().unwrap_or_default()),
            ("Credentials", path(&ctx.creds)),
            ("NKey", path(&ctx.nkey)),
            ("TLS Certificate", path(&ctx.cert)),
            ("TLS Key", path(&ctx.key)),
            ("TLS CA", path(&ctx.ca)),
            (
                "TLS First",
                if ctx.tls_first {
                    "yes".into()
                } else {
                    String::new()
                },
            ),
            (
                "Path",
                store
                    .dir()
                    .join("context")
                    .join(format!("{name}.json"))
                    .display()
                    .to_string(),
            ),
        ],
    );
    Ok(())
}
