"""The connector's HTTP layer: one blueprint per domain (connectors.web.api for the participant's
own people, connectors.web.dsp for the Dataspace Protocol, connectors.web.jobs for jobs of both
roles). Each reads the node's context from ``current_app.extensions`` (connectors.web.common);
the services below them return values or raise, and only this layer speaks HTTP."""
