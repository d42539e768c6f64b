export { agentKafka, agentDatabaseUrl, agentRegistry, startAgent, type RunningAgent } from './agent.ts';
export { AgentConfigSchema, readAgentConfig, type AgentConfig } from './config.ts';
