//! Scenario descriptions, one module per area (`conformance/vectors/<area>/`).

mod auth;
mod channels;
mod crud;
mod direct;
mod envelope;
mod fanout;
mod filters;
mod frames;
mod guards;
mod handlers;
mod heartbeat;
mod hostcalls;
mod identity;
mod limits;
mod resource_streams;
mod room_control;
mod rooms;
mod server_api;
mod socketio;
mod streams;
mod subscribe;
mod tenants;
mod upgrade;

use crate::dsl::Sc;

/// Every scenario.
pub fn all() -> Vec<Sc> {
    let mut v = Vec::new();
    v.extend(upgrade::scenarios());
    v.extend(auth::scenarios());
    v.extend(identity::scenarios());
    v.extend(frames::scenarios());
    v.extend(limits::scenarios());
    v.extend(heartbeat::scenarios());
    v.extend(subscribe::scenarios());
    v.extend(filters::scenarios());
    v.extend(channels::scenarios());
    v.extend(rooms::scenarios());
    v.extend(direct::scenarios());
    v.extend(crud::scenarios());
    v.extend(guards::scenarios());
    v.extend(hostcalls::scenarios());
    v.extend(server_api::scenarios());
    v.extend(socketio::scenarios());
    v.extend(fanout::scenarios());
    v.extend(streams::scenarios());
    v.extend(resource_streams::scenarios());
    v.extend(handlers::scenarios());
    v.extend(room_control::scenarios());
    v.extend(tenants::scenarios());
    v.extend(envelope::scenarios());
    v
}
