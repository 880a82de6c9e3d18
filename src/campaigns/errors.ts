import { SmsqError } from '../errors.js';

/**
 * A run cannot read its recipients (file missing, header without the phone column, malformed
 * CSV) or a campaign is gone: retrying would fail the same way, so the run fails at once.
 */
export class CampaignSourceError extends SmsqError {
  constructor(message: string, options?: ErrorOptions) {
    super('SMSQ_CAMPAIGN_SOURCE', message, options);
  }
}
