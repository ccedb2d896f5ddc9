use wschat::{Message, Server};

fn main() -> Result<(), wschat::Error> {
    let mut server = Server::new()?; // it owns a loop
    server.set_max_message(1 << 20)?;
    server.on_message(|session, message| {
        if let Message::Text(text) = message {
            let _ = session.send_text(text); // echo text back
        }
    })?;
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok());
    server.listen("127.0.0.1", port.unwrap_or(8080))?;
    println!("listening on port {}", server.port()?);
    server.run() // until a StopHandle, from any thread, stops it
}
