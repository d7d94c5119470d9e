// errors.js - the error class of the package.
/** An error reply of the gateway ({"error":{type,message,code}}) or a failed flow. */
export class KeyMeldError extends Error {
  constructor(message, { status = 0, type = 'client_error', requestId, body } = {}) {
    super(message);
    this.name = 'KeyMeldError';
    this.status = status;
    this.type = type;
    this.requestId = requestId;
    this.body = body;
  }
}
