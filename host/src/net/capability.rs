//! The `net` import of the WIT world, served by this module's [`NetGrant`]: the adapter
//! between the generated bindings and the plain network code beside it.

use wasmtime::component::{Resource, ResourceTable};

use super::{HttpRequest, NetError, NetGrant, SmtpConnection};
use crate::bindings::net::{self as wit, Host, HostConnection};

/// One call's network access: its grant (none for panel calls) and its open connections.
pub struct NetAccess {
    grant: Option<NetGrant>,
    table: ResourceTable,
    overrides: SigninOverrides,
}

/// The host's `--tenant` and `--client-id`, handed to the component for this invocation.
#[derive(Clone, Debug, Default)]
pub struct SigninOverrides {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
}

impl NetAccess {
    pub fn new(grant: Option<NetGrant>, overrides: SigninOverrides) -> Self {
        Self {
            grant,
            table: ResourceTable::new(),
            overrides,
        }
    }

    fn grant(&self) -> Result<&NetGrant, wit::NetError> {
        self.grant.as_ref().ok_or_else(|| {
            wit::NetError::Denied("no network access is granted to this call".into())
        })
    }

    fn connection(
        &mut self,
        handle: &Resource<SmtpConnection>,
    ) -> Result<&mut SmtpConnection, wit::NetError> {
        self.table
            .get_mut(handle)
            .map_err(|e| wit::NetError::Other(format!("unknown connection: {e}")))
    }
}

fn to_wit(err: NetError) -> wit::NetError {
    match err {
        NetError::Denied(what) => wit::NetError::Denied(what),
        NetError::Dns(what) => wit::NetError::Dns(what),
        NetError::Refused(what) => wit::NetError::Refused(what),
        NetError::Timeout => wit::NetError::Timeout,
        NetError::Tls(what) => wit::NetError::Tls(what),
        NetError::Closed => wit::NetError::Closed,
        NetError::TooLarge(n) => wit::NetError::TooLarge(n),
        NetError::Proxy(what) => wit::NetError::Proxy(what),
        NetError::Other(what) => wit::NetError::Other(what),
    }
}

impl Host for NetAccess {
    fn http_request(&mut self, req: wit::Request) -> Result<wit::Response, wit::NetError> {
        let request = HttpRequest {
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: req.body,
        };
        let response = self.grant()?.http_request(request).map_err(to_wit)?;
        Ok(wit::Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    fn tenant_override(&mut self) -> Option<String> {
        self.overrides.tenant.clone()
    }

    fn client_id_override(&mut self) -> Option<String> {
        self.overrides.client_id.clone()
    }

    fn authority(&mut self) -> String {
        self.grant
            .as_ref()
            .map(|g| g.authority().to_owned())
            .unwrap_or_default()
    }
}

impl HostConnection for NetAccess {
    fn connect(
        &mut self,
        host: String,
        port: u16,
    ) -> Result<Resource<SmtpConnection>, wit::NetError> {
        let connection = self.grant()?.connect(&host, port).map_err(to_wit)?;
        self.table
            .push(connection)
            .map_err(|e| wit::NetError::Other(format!("too many connections: {e}")))
    }

    fn read(
        &mut self,
        handle: Resource<SmtpConnection>,
        max: u32,
    ) -> Result<Vec<u8>, wit::NetError> {
        self.connection(&handle)?.read(max).map_err(to_wit)
    }

    fn write(
        &mut self,
        handle: Resource<SmtpConnection>,
        data: Vec<u8>,
    ) -> Result<(), wit::NetError> {
        self.connection(&handle)?.write(&data).map_err(to_wit)
    }

    fn start_tls(
        &mut self,
        handle: Resource<SmtpConnection>,
        server_name: String,
    ) -> Result<(), wit::NetError> {
        self.connection(&handle)?
            .start_tls(&server_name)
            .map_err(to_wit)
    }

    fn drop(&mut self, handle: Resource<SmtpConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}
