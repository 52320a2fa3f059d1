// Builds an app WITHOUT ReliableWsModule using NestFactory's defaults (abortOnError on, default
// logger) and installs ReliableWsAdapter, as a user who forgot the module would.
//   RWS_LIB  absolute path of the compiled lib/index.js
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { pathToFileURL } from 'node:url';

setTimeout(() => process.exit(4), 20000).unref();
const { ReliableWsAdapter } = await import(pathToFileURL(process.env.RWS_LIB).href);

class AppModule {}
Module({})(AppModule);

const app = await NestFactory.create(AppModule);
try {
  app.useWebSocketAdapter(new ReliableWsAdapter(app));
} catch (error) {
  console.error(`caught: ${error.message}`);
  process.exit(2);
}
console.log('no error: the adapter was created without the module');
await app.close();
