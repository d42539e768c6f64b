export { NgdbSink, NGDB_SINK_DEFAULTS, type NgdbSinkOptions, type NgdbSinkStats } from './ngdb-sink.ts';
